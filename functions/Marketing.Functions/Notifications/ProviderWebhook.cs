using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Marketing.Functions.Hosting;
using Marketing.Functions.Telemetry;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;

namespace Marketing.Functions.Notifications;

/// <summary>What one call to a provider came to.</summary>
public enum WebhookOutcome { Delivered, Rejected, Unavailable, NotAllowed }

public sealed record WebhookResult(WebhookOutcome Outcome, string? Error = null);

/// <summary>Thrown by the connect step when every address a webhook's host resolves to is refused (SSRF guard).</summary>
public sealed class AddressNotAllowedException(string message) : Exception(message);

/// <summary>
/// Posts a <see cref="NotificationMessage"/> to its channel's provider webhook, signed:
/// <c>X-Timestamp: unix seconds</c>, <c>X-Signature: sha256=hex(HMAC-SHA256(secret, "timestamp.body"))</c> and
/// <c>Idempotency-Key: record id</c> (the same on every retry and redelivery, so the provider can drop a repeat).
/// SSRF: the URL comes from settings only; https is required (http only with the local-only loopback allowance); the
/// connection is opened by <see cref="ConnectAsync"/>, which resolves the host itself and connects only to an address it
/// has checked, so a DNS answer that changes between a check and the connect (rebinding) cannot reach inside. No proxy,
/// no redirects: either would make the peer someone the check did not see.
/// </summary>
public sealed class ProviderWebhook(IHttpClientFactory clients, IOptions<DeliveryOptions> options, TimeProvider time)
{
    public const string ClientName = "provider-webhooks";

    /// <summary>
    /// One delivery to the provider (its retries included), timed on the injected clock and recorded with its outcome
    /// (marketing.webhook.duration, docs/operations.md).
    /// </summary>
    public async Task<WebhookResult> PostAsync(string url, NotificationMessage message, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        var result = await SendAsync(url, message, ct);
        Metrics.WebhookCall(NotificationChannels.Wire(message.Channel), Wire(result.Outcome), time.GetElapsedTime(started).TotalMilliseconds);
        return result;
    }

    /// <summary>The outcome's name as a metric tag (snake case, as <see cref="Metrics.WebhookOutcomes"/>).</summary>
    public static string Wire(WebhookOutcome outcome) => outcome switch
    {
        WebhookOutcome.Delivered => Metrics.WebhookOutcomes.Delivered,
        WebhookOutcome.Rejected => Metrics.WebhookOutcomes.Rejected,
        WebhookOutcome.Unavailable => Metrics.WebhookOutcomes.Unavailable,
        _ => Metrics.WebhookOutcomes.NotAllowed,
    };

    private async Task<WebhookResult> SendAsync(string url, NotificationMessage message, CancellationToken ct)
    {
        var settings = options.Value;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.UserInfo.Length > 0)
            return new(WebhookOutcome.NotAllowed, "address not allowed: not an absolute URL");
        if (uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && settings.AllowLoopback))
            return new(WebhookOutcome.NotAllowed, "address not allowed: https required");

        var body = JsonSerializer.SerializeToUtf8Bytes(message, Json.Options);
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add("Idempotency-Key", message.RecordId);
        request.Headers.Add("X-Timestamp", timestamp);
        request.Headers.Add("X-Signature", Signature(settings.WebhookSecret ?? "", timestamp, body));
        try
        {
            using var response = await clients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            var status = (int)response.StatusCode;
            var said = $"provider answered {status} {response.ReasonPhrase}".TrimEnd();
            return status switch
            {
                >= 200 and < 300 => new(WebhookOutcome.Delivered),
                // 408 and 429 say "later", not "never": the retries had them; redelivery tries again.
                408 or 429 or >= 500 => new(WebhookOutcome.Unavailable, said),
                // Any other answer (4xx, or a redirect we do not follow) will not change by sending the same message again.
                _ => new(WebhookOutcome.Rejected, said),
            };
        }
        catch (Exception e) when (Refused(e) is { } refused)
        {
            return new(WebhookOutcome.NotAllowed, "address not allowed: " + refused.Message);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && e is HttpRequestException or TimeoutException or OperationCanceledException
                                      or Polly.Timeout.TimeoutRejectedException or Polly.CircuitBreaker.BrokenCircuitException)
        {
            return new(WebhookOutcome.Unavailable, $"{e.GetType().Name}: {e.Message.Split('\n')[0]}");
        }
    }

    /// <summary>"sha256=" + lowercase hex of HMAC-SHA256(secret, "<paramref name="timestamp"/>.<paramref name="body"/>").</summary>
    public static string Signature(string secret, string timestamp, byte[] body)
    {
        var signed = Encoding.UTF8.GetBytes(timestamp + ".").Concat(body).ToArray();
        return "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed));
    }

    private static AddressNotAllowedException? Refused(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is AddressNotAllowedException refused) return refused;
        return null;
    }

    /// <summary>
    /// Whether a provider may be at <paramref name="address"/>: public unicast only. Refused: unspecified (0.0.0.0, ::),
    /// 0/8, private 10/8, 172.16/12, 192.168/16, carrier-grade NAT 100.64/10, loopback 127/8 and ::1 (unless
    /// <paramref name="allowLoopback"/>), link-local 169.254/16 (the cloud metadata endpoint 169.254.169.254) and
    /// fe80::/10, unique-local fc00::/7, site-local fec0::/10, multicast and broadcast, 192.0.0/24, benchmark 198.18/15,
    /// reserved 240/4; IPv4-mapped and IPv4-compatible IPv6 forms, 6to4 and NAT64 are judged by the IPv4 address inside.
    /// </summary>
    public static bool IsAllowed(IPAddress address, bool allowLoopback)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (address.IsIPv4MappedToIPv6) return IsAllowed(address.MapToIPv4(), allowLoopback);
            if (IPAddress.IPv6Loopback.Equals(address)) return allowLoopback;
            var b = address.GetAddressBytes();
            if (b.All(x => x == 0)) return false; // ::
            if (b.Take(12).All(x => x == 0)) return IsAllowed(new IPAddress(b[12..]), allowLoopback); // ::a.b.c.d (deprecated)
            if (b[0] == 0x20 && b[1] == 0x02) return IsAllowed(new IPAddress(b[2..6]), allowLoopback); // 6to4 2002::/16
            if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4..12].All(x => x == 0))
                return IsAllowed(new IPAddress(b[12..]), allowLoopback); // NAT64 64:ff9b::/96
            if (address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast) return false;
            if ((b[0] & 0xfe) == 0xfc) return false; // unique-local fc00::/7
            return (b[0] & 0xe0) == 0x20; // global unicast 2000::/3 only
        }
        if (address.AddressFamily != AddressFamily.InterNetwork) return false;
        var a = address.GetAddressBytes();
        if (a[0] == 127) return allowLoopback;
        return !(a[0] is 0 or 10 or >= 224 // this network, private, multicast and reserved (240/4, broadcast)
            || (a[0] == 100 && a[1] is >= 64 and < 128)
            || (a[0] == 169 && a[1] == 254)
            || (a[0] == 172 && a[1] is >= 16 and < 32)
            || (a[0] == 192 && a[1] == 168)
            || (a[0] == 192 && a[1] == 0 && a[2] == 0)
            || (a[0] == 198 && a[1] is 18 or 19));
    }

    /// <summary>
    /// The handler's connect step: resolves the host, keeps the allowed addresses and connects to one of them; the
    /// address checked is the address connected to. Refuses (<see cref="AddressNotAllowedException"/>) when none is allowed.
    /// </summary>
    public static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, bool allowLoopback, CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host.Trim('[', ']');
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        var allowed = addresses.Where(a => IsAllowed(a, allowLoopback)).ToList();
        if (allowed.Count == 0)
            throw new AddressNotAllowedException($"{host} resolves to {string.Join(", ", addresses.Select(a => a.ToString()))}");
        Exception? last = null;
        foreach (var address in allowed)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
        }
        throw last!;
    }

    /// <summary>The named client: the guarded handler, then timeouts and retries with backoff (Microsoft.Extensions.Http.Resilience).</summary>
    public static IServiceCollection AddProviderWebhooks(IServiceCollection services)
    {
        services.AddSingleton<ProviderWebhook>();
        services.AddHttpClient(ClientName)
            .ConfigurePrimaryHttpMessageHandler(s =>
            {
                var allowLoopback = s.GetRequiredService<IOptions<DeliveryOptions>>().Value.AllowLoopback;
                return new SocketsHttpHandler
                {
                    UseProxy = false,
                    AllowAutoRedirect = false,
                    UseCookies = false,
                    ConnectTimeout = TimeSpan.FromSeconds(10),
                    ConnectCallback = (context, ct) => ConnectAsync(context, allowLoopback, ct),
                };
            })
            .AddResilienceHandler("provider-webhook", (builder, context) =>
            {
                var o = context.ServiceProvider.GetRequiredService<IOptions<DeliveryOptions>>().Value;
                // Network waits happen in real time, whatever clock the app runs on (tests move theirs by hand).
                builder.TimeProvider = TimeProvider.System;
                builder.AddTimeout(TimeSpan.FromSeconds(o.TimeoutSeconds * (o.Retries + 1) + o.RetryDelayMilliseconds / 1000.0 * (1 << o.Retries)));
                if (o.Retries > 0)
                    builder.AddRetry(new HttpRetryStrategyOptions
                    {
                        MaxRetryAttempts = o.Retries,
                        Delay = TimeSpan.FromMilliseconds(o.RetryDelayMilliseconds),
                        BackoffType = DelayBackoffType.Exponential,
                        UseJitter = true,
                        // A refused address stays refused: no retry. Everything else transient (5xx, 408, 429, network, timeout) is retried.
                        ShouldHandle = args => args.Outcome.Exception is { } e && Refused(e) is not null
                            ? PredicateResult.False()
                            : HttpClientResiliencePredicates.IsTransient(args.Outcome) ? PredicateResult.True() : PredicateResult.False(),
                    });
                builder.AddTimeout(TimeSpan.FromSeconds(o.TimeoutSeconds));
            });
        return services;
    }
}
