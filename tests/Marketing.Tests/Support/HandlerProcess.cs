using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xunit;

namespace Marketing.Tests.Support;

/// <summary>Runs the built function app as its own process, the way the Functions host (or a script) does.</summary>
public static class HandlerProcess
{
    private static readonly string[] Forwarded = ["Cosmos__Endpoint", "Cosmos__Key", "Auth__Issuer", "Auth__Audience", "Auth__DevSigningKey"];

    /// <summary>Starts it; <paramref name="output"/>, when given, receives each line it writes to stdout.</summary>
    public static Process Start(IEnumerable<string> args, IDictionary<string, string>? environment = null, Action<string>? output = null)
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
        var process = new Process { StartInfo = start };
        // Drain both pipes so a chatty process can never block on a full buffer (handlers attached before it starts,
        // so no line is missed).
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) output?.Invoke(e.Data); };
        process.ErrorDataReceived += (_, _) => { };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Waits (at most 60 s) until the process on <paramref name="baseUrl"/> answers /api/health.</summary>
    public static async Task WaitUntilHealthyAsync(string baseUrl)
    {
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                if ((await http.GetAsync("/api/health")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            await Task.Delay(100);
        }
        Assert.Fail("the handler process did not answer /api/health within 60 s");
    }

    /// <summary>A loopback port free right now.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
