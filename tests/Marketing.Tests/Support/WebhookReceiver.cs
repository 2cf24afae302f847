using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Marketing.Tests.Support;

/// <summary>One call a provider received: its headers, body, and whether its signature checked out.</summary>
public sealed record ReceivedCall(string Path, string? IdempotencyKey, string? Timestamp, string? Signature, string Body, bool SignatureValid);

/// <summary>
/// A provider webhook for tests: a real HTTP listener on 127.0.0.1 (a free port), which checks every call's
/// X-Signature against the shared secret, keeps what it received, and answers the statuses it is told to
/// (then 200).
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    public const string Secret = "test-provider-secret-0123456789-abcdefghij";

    private readonly WebApplication app;
    private readonly ConcurrentQueue<int> answers = new();
    public ConcurrentQueue<ReceivedCall> Calls { get; } = new();
    public string Url { get; private set; } = "";

    /// <summary>Called as each call arrives, before it is answered (a test moves its clock here: the call "takes" that long).</summary>
    public Action? OnCall { get; set; }
    public int Port { get; private set; }

    private WebhookReceiver()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        app = builder.Build();
        app.MapPost("/{**path}", async (HttpContext context) =>
        {
            OnCall?.Invoke();
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer);
            var body = buffer.ToArray();
            var timestamp = context.Request.Headers["X-Timestamp"].ToString();
            var signature = context.Request.Headers["X-Signature"].ToString();
            var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret),
                (byte[])[.. Encoding.UTF8.GetBytes(timestamp + "."), .. body]));
            var valid = timestamp.Length > 0 && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature));
            Calls.Enqueue(new ReceivedCall(context.Request.Path, context.Request.Headers["Idempotency-Key"].ToString(), timestamp, signature,
                Encoding.UTF8.GetString(body), valid));
            return Results.StatusCode(answers.TryDequeue(out var status) ? status : valid ? 200 : 401);
        });
    }

    public static async Task<WebhookReceiver> StartAsync()
    {
        var receiver = new WebhookReceiver();
        await receiver.app.StartAsync();
        receiver.Url = receiver.app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        receiver.Port = new Uri(receiver.Url).Port;
        return receiver;
    }

    /// <summary>The next calls are answered with these statuses, in order; then 200 again.</summary>
    public void AnswerNext(params int[] statuses)
    {
        foreach (var status in statuses) answers.Enqueue(status);
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
