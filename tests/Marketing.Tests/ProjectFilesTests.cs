using System.Text.RegularExpressions;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The repository stands on its own: what its documents and code refer to is in it. A newcomer on a fresh clone
/// has nothing else (docs/local-emulators.md and a decision once pointed at documents that never were in the project).
/// </summary>
public sealed partial class ProjectFilesTests
{
    private static readonly string[] Skipped = [".git", "node_modules", "bin", "obj", "artifacts", ".emulators", "TestResults"];
    private static readonly string[] TextFiles = [".md", ".cs", ".sh", ".mjs", ".js", ".json", ".bicep", ".yaml", ".yml", ".props", ".csproj", ".sln"];

    /// <summary>Every Markdown document a file names (README.md, docs/api.md, ...) exists in the repository.</summary>
    [Fact]
    public void Every_document_a_file_names_is_in_the_repository()
    {
        var files = ProjectFiles().ToList();
        Assert.Contains(files, f => f.EndsWith("README.md", StringComparison.Ordinal)); // the walk is real
        var documents = files.Where(f => f.EndsWith(".md", StringComparison.Ordinal)).Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var file in files)
        {
            if (file.EndsWith("package-lock.json", StringComparison.Ordinal)) continue;
            foreach (Match named in DocumentName().Matches(File.ReadAllText(file)))
                if (!documents.Contains(Path.GetFileName(named.Value)))
                    missing.Add($"{Path.GetRelativePath(Repo.Root, file)} names {named.Value}");
        }
        Assert.True(missing.Count == 0, "documents not in the repository:\n" + string.Join('\n', missing));
    }

    /// <summary>No document's relative link or path climbs out of the repository (to a sibling folder of the clone, say).</summary>
    [Fact]
    public void No_document_points_outside_the_repository()
    {
        var outside = new List<string>();
        foreach (var file in ProjectFiles().Where(f => f.EndsWith(".md", StringComparison.Ordinal)))
            foreach (Match relative in RelativePath().Matches(File.ReadAllText(file)))
            {
                var target = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, relative.Value));
                if (!target.StartsWith(Repo.Root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    outside.Add($"{Path.GetRelativePath(Repo.Root, file)}: {relative.Value}");
            }
        Assert.True(outside.Count == 0, "paths outside the repository:\n" + string.Join('\n', outside));
    }

    private static IEnumerable<string> ProjectFiles()
    {
        var pending = new Stack<string>([Repo.Root]);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var sub in Directory.GetDirectories(dir))
                if (!Skipped.Contains(Path.GetFileName(sub))) pending.Push(sub);
            foreach (var file in Directory.GetFiles(dir))
                if (TextFiles.Contains(Path.GetExtension(file)) || Path.GetFileName(file) == ".gitignore") yield return file;
        }
    }

    /// <summary>A file name ending in .md (upper or lower case), with its folders.</summary>
    [GeneratedRegex(@"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b")]
    private static partial Regex DocumentName();

    /// <summary>A path that climbs folders: ../x, ../../x.</summary>
    [GeneratedRegex(@"(?<![A-Za-z0-9_.])(\.\./)+[A-Za-z0-9_.-][A-Za-z0-9_./-]*")]
    private static partial Regex RelativePath();
}
