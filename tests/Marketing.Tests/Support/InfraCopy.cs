using Xunit;

namespace Marketing.Tests.Support;

/// <summary>A copy of infra/ in a temporary folder (deleted on dispose), to damage and compile.</summary>
public sealed class InfraCopy : IDisposable
{
    private readonly bool owned;

    private InfraCopy(string dir, bool owned)
    {
        Dir = dir;
        this.owned = owned;
    }

    public string Dir { get; }

    /// <summary>A copy of <paramref name="infra"/> in a new temporary folder, or in <paramref name="into"/>.</summary>
    public static InfraCopy Of(string infra, string? into = null)
    {
        var dir = into ?? Directory.CreateTempSubdirectory("infra-").FullName;
        foreach (var path in Directory.EnumerateFiles(infra, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dir, Path.GetRelativePath(infra, path));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            System.IO.File.Copy(path, target);
        }
        return new InfraCopy(dir, owned: into is null);
    }

    public string File(string relative) => Path.Combine(Dir, relative);

    /// <summary>Replaces <paramref name="find"/>, which must be there: damage that does not apply proves nothing.</summary>
    public void Edit(string relative, string find, string replace)
    {
        var text = System.IO.File.ReadAllText(File(relative));
        Assert.Contains(find, text);
        System.IO.File.WriteAllText(File(relative), text.Replace(find, replace));
    }

    public void Dispose()
    {
        if (owned) Directory.Delete(Dir, recursive: true);
    }
}

/// <summary>
/// One damaged copy of infra/ per case of <see cref="InfraContractTests.Damages"/>, all compiled by one run of
/// the compiler (`bicep build --pattern`): the compiler's start costs more than a compile, and there are many cases.
/// </summary>
public sealed class DamagedInfra : IDisposable
{
    private readonly DirectoryInfo root = Directory.CreateTempSubdirectory("infra-damaged-");
    private readonly Bicep.Result build;

    public DamagedInfra()
    {
        var infra = Repo.PathOf("infra");
        for (var i = 0; i < InfraContractTests.Damages.Length; i++)
        {
            var (file, find, replace, _) = InfraContractTests.Damages[i];
            InfraCopy.Of(infra, Case(i)).Edit(file, find, replace);
        }
        build = Bicep.BuildAll(root.FullName, "*/main.bicep");
        // Out of each copy, so that the check of infra's own JSON files does not take it for one of them.
        if (build.ExitCode == 0)
            for (var i = 0; i < InfraContractTests.Damages.Length; i++)
                File.Move(Path.Combine(Case(i), "main.json"), Case(i) + ".json");
    }

    /// <summary>Damaged copy <paramref name="index"/> as compiled (warnings allowed: damage may leave a parameter unused).</summary>
    public InfraContract.Compiled Compiled(int index)
    {
        Assert.True(build.ExitCode == 0, $"bicep build of the damaged copies failed: {build}");
        return InfraContract.Read(Case(index), File.ReadAllText(Case(index) + ".json"));
    }

    private string Case(int index) => Path.Combine(root.FullName, $"case{index}");

    public void Dispose() => root.Delete(recursive: true);
}
