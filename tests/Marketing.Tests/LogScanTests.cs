using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Azure.Core.Diagnostics;
using Marketing.Functions.Hosting;
using Marketing.Functions.Notifications;
using Marketing.Functions.Telemetry;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Trace;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Nothing secret or personal reaches a log (docs/operations.md, "Logs"). One app with telemetry on drives the whole
/// platform (campaign, media upload by SAS, claims, a redemption's steps, an order event, reminders delivered through a
/// signed webhook, the timers, a payout batch and its CSV link) and keeps everything it could write anywhere: every
/// ILogger record at Trace and up (message, structured state, scopes, exception), every span (ours, ASP.NET Core's,
/// HttpClient's, the Cosmos SDK's: all attributes and events), the Azure SDK's event-source logs (what the Azure Monitor
/// distro forwards), and every invocation's Logs returned to the host. Then none of it may hold a token, a signature, a
/// key, a secret, a body or a personal marker. Runs alone: the Azure SDK's event sources are process-wide.
/// </summary>
[Collection(TelemetryCollection.Name)]
public sealed class LogScanTests
{
    /// <summary>One thing written somewhere, with where it came from (for the failure message).</summary>
    private sealed record Written(string Where, string Text);

    /// <summary>An ILogger record as a provider receives it.</summary>
    private sealed record Record(string Category, LogLevel Level, EventId EventId, string Message, IReadOnlyList<string> State,
        IReadOnlyList<string> Scopes, string? Exception);

    /// <summary>Every record of every category at Trace and up (its own filter rule outranks the app's levels).</summary>
    private sealed class Capture : ILoggerProvider, ISupportExternalScope
    {
        public ConcurrentQueue<Record> Records { get; } = new();
        private IExternalScopeProvider scopes = new LoggerExternalScopeProvider();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => scopes = scopeProvider;
        public void Dispose() { }

        private sealed class Logger(Capture capture, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => capture.scopes.Push(state);
            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? pairs.Select(p => $"{p.Key}={p.Value}").ToList() : [$"{state}"];
                var scopes = new List<string>();
                capture.scopes.ForEachScope((scope, list) =>
                {
                    list.Add($"{scope}");
                    if (scope is IEnumerable<KeyValuePair<string, object?>> kv) list.AddRange(kv.Select(p => $"{p.Key}={p.Value}"));
                }, scopes);
                capture.Records.Enqueue(new Record(category, logLevel, eventId, formatter(state, exception), values, scopes, exception?.ToString()));
            }
        }
    }

    /// <summary>Keeps the Logs of every invocation answer (POST /{Function}) the handler gives the host.</summary>
    private sealed class InvocationLogs : IStartupFilter
    {
        public ConcurrentQueue<string> Lines { get; } = new();
        public int Invocations;

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, call) =>
            {
                if (!HttpMethods.IsPost(context.Request.Method) || context.Request.Path.StartsWithSegments("/api"))
                {
                    await call(context);
                    return;
                }
                var original = context.Response.Body;
                using var buffer = new MemoryStream();
                context.Response.Body = buffer;
                try
                {
                    await call(context);
                }
                finally
                {
                    context.Response.Body = original;
                }
                var answer = JsonNode.Parse(buffer.ToArray());
                Interlocked.Increment(ref Invocations);
                foreach (var line in answer?["Logs"]?.AsArray() ?? []) Lines.Enqueue((string)line!);
                buffer.Position = 0;
                await buffer.CopyToAsync(original);
            });
            next(app);
        };
    }

    private sealed class Captured
    {
        public Capture Logs { get; } = new();
        public List<Activity> Spans { get; } = [];
        public InvocationLogs Invocations { get; } = new();
        public ConcurrentQueue<string> AzureSdk { get; } = new();
    }

    private static readonly HttpClient Storage = new();

    // Markers that stand for what must never be logged: bodies (a campaign's name, an order's lines, a refund's
    // reason, an uploaded file) and personal data, unique to this run.
    private static readonly string Run = Guid.NewGuid().ToString("N")[..10];
    private static readonly string NameMarker = "namemark" + Run;
    private static readonly string SkuMarker = "skumark" + Run;
    private static readonly string ReasonMarker = "reasonmark" + Run;
    private static readonly string FileMarker = "filemark" + Run;
    private static readonly string CategoryMarker = "catmark" + Run;

    [Fact]
    public async Task A_full_flow_logs_no_token_signature_key_secret_body_or_personal_data_and_every_own_record_has_an_event_id()
    {
        var captured = new Captured();
        await using var receiver = await WebhookReceiver.StartAsync();
        using var azureSdk = new AzureEventSourceListener((e, message) =>
            captured.AzureSdk.Enqueue($"{e.EventSource.Name}/{e.EventName}: {message} | {string.Join(" | ", e.Payload ?? [])}"), EventLevel.Verbose);
        var tokens = new ConcurrentBag<string>();
        await using (var app = await TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-logscan-{Guid.NewGuid():N}"[..40], builder =>
        {
            builder.UseSetting("Telemetry:Enabled", "true");
            builder.UseSetting("NotificationDelivery:SmsWebhook", receiver.Url + "/sms");
            // The other providers are not configured: their messages (operator alerts among them) fail at once, without a call.
            foreach (var other in new[] { "PushWebhook", "WechatWebhook", "EmailWebhook", "OperatorsWebhook" })
                builder.UseSetting("NotificationDelivery:" + other, "");
            builder.UseSetting("NotificationDelivery:WebhookSecret", WebhookReceiver.Secret);
            builder.UseSetting("NotificationDelivery:AllowLoopback", "true");
            builder.ConfigureLogging(logging => logging.AddProvider(captured.Logs).AddFilter<Capture>(null, LogLevel.Trace));
            builder.ConfigureServices(services => services
                .AddSingleton<IStartupFilter>(captured.Invocations)
                .ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(captured.Spans)));
        }))
        {
            await DriveAsync(app, receiver, tokens);
            Assert.True(app.Services.GetRequiredService<TracerProvider>().ForceFlush(30_000));
        }

        // It captured a great deal: an empty capture proves nothing.
        var records = captured.Logs.Records.ToList();
        Assert.True(records.Count >= 300, $"only {records.Count} log records");
        Assert.True(captured.Spans.Count >= 300, $"only {captured.Spans.Count} spans");
        Assert.True(captured.Invocations.Invocations >= 9, $"only {captured.Invocations.Invocations} invocations");
        Assert.True(captured.Invocations.Lines.Count >= 9, $"only {captured.Invocations.Lines.Count} invocation log lines");
        Assert.NotEmpty(captured.AzureSdk); // the blob calls the app made with its own client
        Assert.Contains(captured.Spans, s => s.Kind == ActivityKind.Client && s.Source.Name.StartsWith("System.Net.Http", StringComparison.Ordinal));
        var cosmos = captured.Spans.Where(s => s.Source.Name == TelemetryModule.CosmosSource).ToList();
        Assert.NotEmpty(cosmos);
        // Cosmos calls that failed (a read of what is not there yet) keep their type and status, not the server's message.
        Assert.Contains(cosmos, s => s.GetTagItem("exception.type") is not null);
        Assert.DoesNotContain(cosmos, s => s.GetTagItem(CosmosErrorRedaction.ExceptionMessage) is not null);

        // The handler's own records all carry a stable event id; each timer and queue function wrote its summary.
        var own = records.Where(r => r.Category.StartsWith("Marketing.", StringComparison.Ordinal)).ToList();
        Assert.All(own, r => Assert.True(r.EventId.Id != 0, $"{r.Category}: '{r.Message}' has no event id"));
        foreach (var summary in new[] { "SendRemindersRan", "NotificationHandled", "OrderEventSettled", "ReleaseCommissionsRan", "ExpireCouponsRan",
                     "AggregateStatsRan", "AuditRepairRan", "ReconcileStockRan" })
            Assert.Contains(own, r => r.EventId.Name == summary);
        var delivered = Assert.Single(own, r => r.EventId.Name == "NotificationHandled" && r.Message.EndsWith(": delivered.", StringComparison.Ordinal));
        Assert.Contains("Channel=sms", delivered.State);

        var written = new List<Written>();
        foreach (var r in records)
        {
            var where = $"log {r.Category} ({r.Level}, event {r.EventId})";
            written.Add(new(where, r.Message));
            written.AddRange(r.State.Select(s => new Written(where + " state", s)));
            written.AddRange(r.Scopes.Select(s => new Written(where + " scope", s)));
            if (r.Exception is not null) written.Add(new(where + " exception", r.Exception));
        }
        foreach (var span in captured.Spans)
        {
            var where = $"span {span.Source.Name} '{span.DisplayName}'";
            written.Add(new(where, span.DisplayName));
            written.AddRange(span.TagObjects.Select(t => new Written(where + " attribute", $"{t.Key}={t.Value}")));
            written.AddRange(span.Events.SelectMany(e => e.Tags.Select(t => new Written($"{where} event {e.Name}", $"{t.Key}={t.Value}"))));
            written.AddRange(span.Baggage.Select(b => new Written(where + " baggage", $"{b.Key}={b.Value}")));
            if (span.StatusDescription is not null) written.Add(new(where + " status", span.StatusDescription));
        }
        written.AddRange(captured.Invocations.Lines.Select(l => new Written("invocation log", l)));
        written.AddRange(captured.AzureSdk.Select(l => new Written("Azure SDK event", l)));

        Assert.NotEmpty(tokens);
        var forbidden = new List<(string What, string Value)>
        {
            ("the dev signing key", Settings.Get("Auth__DevSigningKey")),
            ("the webhook secret", WebhookReceiver.Secret),
            ("the Cosmos emulator key", Settings.Get("Cosmos__Key")),
            ("the storage account key", Settings.Get("Media__AccountKey")),
            ("the storage connection string's key", AccountKey(Settings.Get("Blobs__ConnectionString"))),
            ("a SAS signature", "sig="),
            ("a SAS signature (encoded)", "sig%3d"),
            ("a shared-key Authorization header", "SharedKey "),
            ("a Cosmos master-key Authorization header", "type%3dmaster"),
            ("a bearer Authorization header", "Bearer ey"),
            ("a campaign's name (a request body)", NameMarker),
            ("an order line (a request body)", SkuMarker),
            ("a refund's reason (a request body)", ReasonMarker),
            ("an uploaded file's content", FileMarker),
            ("an order event's line (a message body)", CategoryMarker),
        };
        foreach (var token in tokens.Distinct())
        {
            forbidden.Add(("a bearer token the test used", token));
            forbidden.Add(("a bearer token's signature", token[(token.LastIndexOf('.') + 1)..]));
        }
        var jwt = new Regex(@"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}", RegexOptions.CultureInvariant);
        var found = new List<string>();
        foreach (var w in written)
        {
            foreach (var (what, value) in forbidden)
                if (w.Text.Contains(value, StringComparison.OrdinalIgnoreCase)) found.Add($"{what} in {w.Where}: {Excerpt(w.Text, value)}");
            if (jwt.Match(w.Text) is { Success: true } m) found.Add($"a JWT in {w.Where}: {Excerpt(w.Text, m.Value)}");
        }
        Assert.True(found.Count == 0, $"{found.Count} findings:\n" + string.Join("\n", found.Distinct().Take(40)));
    }

    private static string AccountKey(string connectionString)
        => connectionString.Split(';').Select(p => p.Split('=', 2)).Single(p => p[0] == "AccountKey")[1];

    private static string Excerpt(string text, string value)
    {
        var at = Math.Max(0, text.IndexOf(value, StringComparison.OrdinalIgnoreCase));
        var from = Math.Max(0, at - 80);
        return text.Substring(from, Math.Min(text.Length - from, 200)).ReplaceLineEndings(" ");
    }

    /// <summary>The flow: every feature that handles a token, a link, a secret, a body or a customer.</summary>
    private static async Task DriveAsync(TestApp app, WebhookReceiver receiver, ConcurrentBag<string> tokens)
    {
        HttpClient As(string subject, string role)
        {
            var token = app.Token(subject, [role]);
            tokens.Add(token);
            return app.Bearer(token);
        }

        // Azurite checks SAS times against the real clock: the links are asked for at the real time.
        app.Clock.Set(DateTimeOffset.UtcNow);
        var op = As("olivia", "operator");
        var campaign = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = "Spend 100 save 20 " + NameMarker));

        // Media: an upload link (SAS) from the app, the bytes PUT to storage through it, then completed.
        var pdf = Encoding.ASCII.GetBytes($"%PDF-1.4\n% {FileMarker}\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
        var link = await (await op.PostAsync($"/api/campaigns/{campaign}/media",
            Api.JsonContent(new { kind = "rules", contentType = "application/pdf", length = pdf.Length }))).AssertStatusAsync(HttpStatusCode.Created);
        var put = new HttpRequestMessage(HttpMethod.Put, (string)link["uploadUrl"]!) { Content = new ByteArrayContent(pdf) };
        put.Content.Headers.ContentType = new MediaTypeHeaderValue("application/pdf");
        put.Headers.Add("x-ms-blob-type", "BlockBlob");
        Assert.Equal(HttpStatusCode.Created, (await Storage.SendAsync(put)).StatusCode);
        await (await op.PostAsync($"/api/campaigns/{campaign}/media/{(string)link["mediaId"]!}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);

        // Claims: alice redeems hers, bob is reminded of his by SMS (opted in, no quiet hours) and gave a WeChat consent.
        var alice = Api.NewId("alice");
        var bob = Api.NewId("bob");
        var aliceCoupon = (string)(await (await As(alice, "customer").ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created))["id"]!;
        var bobCoupon = await (await As(bob, "customer").ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        var bobClient = As(bob, "customer");
        await (await bobClient.PutAsync("/api/me/notification-preferences", Api.JsonContent(new JsonObject
        {
            ["channels"] = new JsonArray("sms"),
            ["quietHours"] = new JsonObject { ["from"] = "00:00", ["to"] = "00:00" },
        }))).AssertStatusAsync(HttpStatusCode.OK);
        await (await bobClient.PostAsync("/api/me/notification-preferences/wechat-consents", null)).AssertStatusAsync(HttpStatusCode.OK);
        // The audit trail read page by page: the page token travels in the query string.
        var auditor = As("audrey", "approver");
        var first = await (await auditor.GetAsync("/api/audit?limit=1")).AssertStatusAsync(HttpStatusCode.OK);
        var pageToken = (string?)first["continuationToken"];
        Assert.NotNull(pageToken);
        await (await auditor.GetAsync("/api/audit?limit=1&continuationToken=" + Uri.EscapeDataString(pageToken))).AssertStatusAsync(HttpStatusCode.OK);
        await app.InvokeTimerAsync("SendReminders"); // the reminders' window starts at the claims

        // The order system: quote, lock, confirm, refund, with order lines and a reason that are bodies.
        var orders = As("orders", "order_system");
        var draft = Orders.Draft();
        draft["lines"]![0]!["sku"] = SkuMarker;
        var cart = draft.DeepClone().AsObject();
        cart["customerId"] = alice;
        await (await orders.PostAsync("/api/redemptions/quote", Api.JsonContent(cart))).AssertStatusAsync(HttpStatusCode.OK);
        var orderId = Api.NewId("o");
        await (await orders.LockAsync(orderId, alice, aliceCoupon, draft)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(orderId, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(orderId, "refund", "customer returned the shoes " + ReasonMarker)).AssertStatusAsync(HttpStatusCode.OK);

        // Distribution: rules, a promoter, a referral visit and a paid order event over the payload protocol.
        await (await op.PutAsync("/api/commission-rules", Api.JsonContent(new JsonObject
        {
            ["level1"] = new JsonObject { ["defaultBps"] = 1000, ["categoryBps"] = new JsonObject() },
            ["level2"] = new JsonObject { ["defaultBps"] = 0, ["categoryBps"] = new JsonObject() },
        }))).AssertStatusAsync(HttpStatusCode.OK);
        var promoter = Api.NewId("p");
        var code = (string)(await (await As(promoter, "customer").PostAsync("/api/promoters", Api.JsonContent(new JsonObject())))
            .AssertStatusAsync(HttpStatusCode.Created))["code"]!;
        var buyer = Api.NewId("b");
        await (await As(buyer, "customer").PostAsync("/api/referrals/visits", Api.JsonContent(new { code }))).AssertStatusAsync(HttpStatusCode.OK);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var paidAt = app.Clock.GetUtcNow();
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", Api.NewId("o"), buyer, paidAt,
            Distribution.Line("l1", CategoryMarker, 12000))));

        // A day before bob's coupon expires: his reminder goes out by SMS, through the signed webhook.
        app.Clock.Set(DateTimeOffset.Parse((string)bobCoupon["validTo"]!, System.Globalization.CultureInfo.InvariantCulture).AddHours(-24).AddMinutes(4));
        var reminders = await app.InvokeTimerAsync("SendReminders");
        var queued = reminders["Outputs"]!["notifications"]!.AsArray();
        Assert.NotEmpty(queued);
        foreach (var message in queued)
            await (await app.DeliverNotificationAsync(message.Deserialize<NotificationMessage>(Json.Options)!)).AssertStatusAsync(HttpStatusCode.OK);
        var call = Assert.Single(receiver.Calls, c => c.Path == "/sms");
        Assert.True(call.SignatureValid);
        Assert.Contains(NameMarker, call.Body); // the body that went out holds the campaign's name: it must not be logged

        // Past the holding time: commissions released, a payout batch, and every other timer once.
        app.Clock.Set(paidAt.AddDays(7).AddMinutes(1));
        await app.InvokeTimerAsync("ReleaseCommissions");
        var batchId = Api.NewId("batch");
        var batch = await As("olivia", "operator").PostAsync("/api/payouts", Api.JsonContent(new { batchId, minimum = 1 }));
        Assert.Equal(HttpStatusCode.Created, batch.StatusCode);
        foreach (var timer in new[] { "ExpireCoupons", "AggregateStats", "AuditRepair", "ReconcileStock" })
            await app.InvokeTimerAsync(timer);

        // Finance's link to the batch's CSV (SAS), at the real time, and the download through it.
        app.Clock.Set(DateTimeOffset.UtcNow);
        var csvLink = await (await As("fiona", "finance").GetAsync($"/api/payouts/{batchId}/csv-link")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Contains("sig=", (string)csvLink["url"]!);
        Assert.Equal(HttpStatusCode.OK, (await Storage.GetAsync((string)csvLink["url"]!)).StatusCode);
    }

    /// <summary>
    /// Once armed, fails the next Cosmos request with a message holding <see cref="Text"/> (as a server's answer can): a
    /// thrown exception, or with <paramref name="answer"/> a response of that status.
    /// </summary>
    private sealed class Fault(HttpStatusCode? answer = null) : Microsoft.Azure.Cosmos.RequestHandler
    {
        public string Text { get; } = "faultmark" + Guid.NewGuid().ToString("N")[..10];
        private int armed;
        public void Arm() => Interlocked.Exchange(ref armed, 1);

        public override Task<Microsoft.Azure.Cosmos.ResponseMessage> SendAsync(Microsoft.Azure.Cosmos.RequestMessage request, CancellationToken cancellationToken)
        {
            if (Interlocked.Exchange(ref armed, 0) == 0) return base.SendAsync(request, cancellationToken);
            var message = $"The server answered: {{\"customer\":\"{Text}\"}}";
            return answer is { } status
                ? Task.FromResult(new Microsoft.Azure.Cosmos.ResponseMessage(status, request, message))
                : throw new InvalidOperationException(message);
        }
    }

    [Fact]
    public async Task A_failed_request_is_logged_at_Azures_levels_with_its_route_type_and_stack_never_the_exceptions_message()
    {
        var logs = new Capture(); // no rule of its own: it gets what the app's levels let through, as Azure's exporter does
        var fault = new Fault();
        await using var app = await TestApp.StartAsync(customize: b =>
        {
            b.ConfigureLogging(l => l.AddProvider(logs));
            b.ConfigureServices(s => s.AddSingleton<Microsoft.Azure.Cosmos.RequestHandler>(fault));
        });
        var customer = app.Customer(Api.NewId("c"));
        await (await customer.GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK);
        fault.Arm();
        var failed = await customer.GetAsync("/api/me/coupons");
        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);

        var records = logs.Records.ToList();
        var error = Assert.Single(records, r => r.Level >= LogLevel.Error);
        Assert.Equal(new EventId(8002, "RequestFailed"), error.EventId);
        Assert.Equal(typeof(Platform).FullName, error.Category);
        Assert.Contains("GET /api/me/coupons/ failed (InvalidOperationException", error.Message); // the route pattern
        Assert.Contains(error.State, s => s.StartsWith("StackTrace=", StringComparison.Ordinal) && s.Contains("Fault.SendAsync", StringComparison.Ordinal));
        Assert.Null(error.Exception);
        Assert.DoesNotContain(records, r => r.Message.Contains(fault.Text) || r.State.Any(s => s.Contains(fault.Text)) || (r.Exception?.Contains(fault.Text) ?? false));
    }

    /// <summary>What an exporter of log records receives (added after the app's own processors, as UseAzureMonitor's is).</summary>
    private sealed class Exported : BaseProcessor<LogRecord>
    {
        public ConcurrentQueue<(string? Category, string Text)> Records { get; } = new();

        public override void OnEnd(LogRecord data)
            => Records.Enqueue((data.CategoryName,
                $"{data.FormattedMessage} {data.Body} {string.Join(";", (data.Attributes ?? []).Select(a => $"{a.Key}={a.Value}"))} {data.Exception}"));
    }

    /// <summary>
    /// In Azure the distro forwards the Azure SDKs' event sources to ILogger at Warning, and the Cosmos SDK writes its whole
    /// diagnostics JSON (the server's answer, request URIs) to one of them for every failed call: the record reaches the
    /// exporter, emptied by CosmosDiagnosticsRedaction.
    /// </summary>
    [Fact]
    public async Task In_Azure_a_failed_Cosmos_call_reaches_the_exporter_without_the_servers_answer()
    {
        var exported = new Exported();
        var busy = new Fault(HttpStatusCode.ServiceUnavailable);
        await using var app = await TestApp.StartAsync(customize: b =>
        {
            // Exporting as in Azure (the forwarder is the distro's), to an address where nothing listens, storing nothing.
            b.UseSetting("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=00000000-0000-4000-8000-000000000000;IngestionEndpoint=http://127.0.0.1:9/");
            b.UseSetting("AzureMonitor:DisableOfflineStorage", "true");
            b.ConfigureServices(s => s.AddSingleton<Microsoft.Azure.Cosmos.RequestHandler>(busy)
                .ConfigureOpenTelemetryLoggerProvider(l => l.AddProcessor(exported)));
        });
        var customer = app.Customer(Api.NewId("c"));
        await (await customer.GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK);
        busy.Arm();
        Assert.False((await customer.GetAsync("/api/me/coupons")).IsSuccessStatusCode);

        var records = exported.Records.ToList();
        var diagnostics = Assert.Single(records, r => r.Category == CosmosDiagnosticsRedaction.Category); // the SDK wrote it
        Assert.Contains(CosmosDiagnosticsRedaction.Redacted, diagnostics.Text);
        Assert.DoesNotContain(records, r => r.Text.Contains(busy.Text, StringComparison.Ordinal));
    }

    [Fact]
    public async Task In_Azure_the_frameworks_log_only_warnings_and_a_LogLevel_setting_overrides_a_default()
    {
        bool Enabled(TestApp app, string category, LogLevel level) => app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(category).IsEnabled(level);
        await using (var app = await TestApp.StartAsync())
        {
            foreach (var category in new[] { "Microsoft.AspNetCore.Hosting.Diagnostics", "System.Net.Http.HttpClient.provider-webhooks.LogicalHandler",
                         "Azure.Core", "Azure.Identity" })
            {
                Assert.False(Enabled(app, category, LogLevel.Information), category);
                Assert.True(Enabled(app, category, LogLevel.Warning), category);
            }
            // Polly's retry warnings carry the exception's message: errors only (the webhook metric counts failures).
            Assert.False(Enabled(app, "Polly", LogLevel.Warning));
            Assert.True(Enabled(app, "Polly", LogLevel.Error));
            Assert.True(Enabled(app, typeof(LogEvents).FullName!, LogLevel.Information)); // our own: the invocation summaries
        }
        await using (var app = await TestApp.StartAsync(customize: b => b.UseSetting("Logging:LogLevel:System.Net.Http", "Information")))
            Assert.True(Enabled(app, "System.Net.Http.HttpClient.provider-webhooks.LogicalHandler", LogLevel.Information));
    }

    [Fact]
    public void The_operations_guide_lists_every_log_event_with_its_id_name_and_level()
    {
        var guide = File.ReadAllText(Path.Combine(Repo.Root, "docs", "operations.md"));
        var events = typeof(LogEvents).GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Select(m => m.GetCustomAttribute<LoggerMessageAttribute>()).OfType<LoggerMessageAttribute>().ToList();
        Assert.True(events.Count >= 15, $"{events.Count} events");
        Assert.Equal(events.Count, events.Select(e => e.EventId).Distinct().Count()); // ids are unique
        foreach (var e in events)
            Assert.True(guide.Contains($"| {e.EventId} | `{e.EventName}` | {e.Level} |", StringComparison.Ordinal),
                $"docs/operations.md has no row | {e.EventId} | `{e.EventName}` | {e.Level} |");
    }
}
