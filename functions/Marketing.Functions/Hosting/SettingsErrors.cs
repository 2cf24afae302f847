using Microsoft.Extensions.Options;

namespace Marketing.Functions.Hosting;

/// <summary>
/// Missing or invalid settings, told as a list with where settings come from, instead of an unhandled
/// OptionsValidationException's stack trace. The app and its commands (Hosting/Commands.cs) exit with
/// <see cref="ExitCode"/>, so a script can tell "not configured" from "ran and found problems" (1).
/// </summary>
public static class SettingsErrors
{
    public const int ExitCode = 2;

    /// <summary>Every settings failure the exception holds (start-up validation reports several at once as an
    /// AggregateException), or null when it is not about settings.</summary>
    public static IReadOnlyList<string>? Of(Exception error) => error switch
    {
        OptionsValidationException invalid => [.. invalid.Failures.Select(f => $"{invalid.OptionsType.Name}: {f}")],
        AggregateException all when all.InnerExceptions.Count > 0 && all.InnerExceptions.All(e => e is OptionsValidationException) =>
            [.. all.InnerExceptions.SelectMany(e => Of(e)!)],
        _ => null,
    };

    public static void Report(IReadOnlyList<string> failures)
    {
        var error = Console.Error;
        error.WriteLine("The app's settings are missing or invalid:");
        foreach (var failure in failures) error.WriteLine("  - " + failure);
        error.WriteLine("Settings are environment variables named Section__Name (Cosmos:Endpoint is Cosmos__Endpoint); docs/configuration.md");
        error.WriteLine("explains each. Locally, scripts/run-local.sh and scripts/command.sh take them from local.settings.json (else");
        error.WriteLine("local.settings.sample.json), a variable already set in the environment winning.");
    }
}
