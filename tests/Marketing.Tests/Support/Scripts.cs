using System.Diagnostics;

namespace Marketing.Tests.Support;

/// <summary>Runs the project's scripts as a newcomer types them, from the repository root.</summary>
public static class Scripts
{
    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public override string ToString() => $"exit {ExitCode}\n{Output}\n{Error}";
    }

    /// <summary>Runs <paramref name="program"/> with <paramref name="args"/> to its end; the environment is the test's
    /// (what scripts/test.sh exported) with <paramref name="environment"/> on top.</summary>
    public static async Task<Result> RunAsync(string program, IEnumerable<string> args, IDictionary<string, string>? environment = null,
        TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(program, args)
        {
            WorkingDirectory = Repo.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout ?? TimeSpan.FromMinutes(5));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new Result(process.ExitCode, await output, await error);
    }

    public static Task<Result> BashAsync(string script, params string[] args) => RunAsync("bash", [Repo.PathOf("scripts", script), .. args]);
}

/// <summary>
/// Tests that build the function app in Release (scripts/publish.sh, run-local.sh, command.sh) share obj/Release:
/// two such builds at once would write the same intermediate files, so they run one after the other.
/// </summary>
[Xunit.CollectionDefinition(Name)]
public sealed class ReleaseBuilds
{
    public const string Name = "Release builds of the function app";
}
