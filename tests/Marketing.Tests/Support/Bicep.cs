using System.Diagnostics;
using System.Reflection;

namespace Marketing.Tests.Support;

/// <summary>
/// The real Bicep compiler, from the NuGet package Azure.Bicep.CommandLine.linux-x64 that the test project
/// restores (its folder reaches us through the BicepPackage assembly metadata written by the .csproj).
/// Every diagnostic counts: the compiler exits 0 on warnings, so a clean run is exit code 0 and nothing
/// printed on stderr (build) or anywhere (lint).
/// </summary>
public static class Bicep
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
    private static readonly Lazy<string> Executable = new(Locate);

    public sealed record Result(int ExitCode, string Output, string Diagnostics)
    {
        public bool Clean => ExitCode == 0 && Diagnostics.Length == 0;
        public override string ToString() => $"exit {ExitCode}\n{Diagnostics}";
    }

    /// <summary>`bicep build FILE --stdout`: the ARM JSON on stdout, diagnostics on stderr.</summary>
    public static Result Build(string bicepFile) => Run(null, "build", bicepFile, "--stdout");

    /// <summary>`bicep lint FILE`: prints nothing when the linter has nothing to say.</summary>
    public static Result Lint(string bicepFile)
    {
        var result = Run(null, "lint", bicepFile);
        return result with { Diagnostics = (result.Output + result.Diagnostics).Trim() };
    }

    /// <summary>`bicep build --pattern GLOB` in <paramref name="dir"/>: each file's ARM JSON is written next to it.</summary>
    public static Result BuildAll(string dir, string pattern) => Run(dir, "build", "--pattern", pattern);

    /// <summary>Compiles <paramref name="bicepFile"/> to ARM JSON; fails with the compiler's words unless it is clean.</summary>
    public static string Compile(string bicepFile)
    {
        var result = Build(bicepFile);
        if (!result.Clean) throw new InvalidOperationException($"bicep build {bicepFile} is not clean: {result}");
        return result.Output;
    }

    public static string Version => Run(null, "--version").Output.Trim();

    private static Result Run(string? workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(Executable.Value)
        {
            WorkingDirectory = workingDirectory ?? "",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        // The compiler is a .NET program: without ICU on the machine it would refuse to start.
        start.Environment["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"bicep {string.Join(' ', arguments)} did not finish within {Timeout}");
        }
        process.WaitForExit(); // drains the redirected streams
        return new Result(process.ExitCode, output.Result, errors.Result.Trim());
    }

    private static string Locate()
    {
        var package = typeof(Bicep).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "BicepPackage")?.Value;
        if (string.IsNullOrEmpty(package))
            throw new InvalidOperationException("BicepPackage metadata missing: is Azure.Bicep.CommandLine.linux-x64 referenced with GeneratePathProperty?");
        var path = Path.Combine(package, "tools", "bicep");
        if (!File.Exists(path)) throw new FileNotFoundException("The Bicep compiler is not in its package", path);
        // The package only holds a Linux build; NuGet does not promise to keep the run bit of files it extracts.
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("The infra tests run the linux-x64 Bicep compiler");
        const UnixFileMode run = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        var mode = File.GetUnixFileMode(path);
        if ((mode & UnixFileMode.UserExecute) == 0) File.SetUnixFileMode(path, mode | run);
        return path;
    }
}
