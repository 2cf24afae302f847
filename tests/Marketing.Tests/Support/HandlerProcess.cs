using System.Diagnostics;

namespace Marketing.Tests.Support;

/// <summary>Runs the built function app as its own process, the way the Functions host (or a script) does.</summary>
public static class HandlerProcess
{
    private static readonly string[] Forwarded = ["Cosmos__Endpoint", "Cosmos__Key", "Auth__Issuer", "Auth__Audience", "Auth__DevSigningKey"];

    public static Process Start(IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet", [typeof(Program).Assembly.Location, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var name in Forwarded)
            start.Environment[name] = Settings.Get(name);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        var process = Process.Start(start)!;
        // Drain both pipes so a chatty process can never block on a full buffer.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
