namespace Marketing.Functions.Hosting;

/// <summary>
/// A setting that only exists for the local emulators and dev issuer (a key, a dev signing key). The infra
/// contract tests require every other setting to be set on the Azure function app, and these never.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class LocalOnlyAttribute : Attribute;
