// The function app on Flex Consumption (FC1, Linux), runtime "custom" 1.0: the Functions host runs our
// ASP.NET Core handler (host.json customHandler). It deploys from a blob container and reaches every
// data plane with the user-assigned identity; the settings below are every setting the code reads
// (tests/Marketing.Tests/InfraContractTests checks that) plus the host's identity-based connections.
param planName string
param name string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string
param mediaMalwareScanning bool
param mediaBlobEndpoint string
param mediaPublicBaseUrl string
param appInsightsConnectionString string
@description('Traces exported per second per instance (Telemetry__TracesPerSecond).')
param telemetryTracesPerSecond string
param cosmosEndpoint string
param cosmosDatabaseName string
param serviceBusNamespaceFqdn string
param orderEventsQueueName string
param notificationsQueueName string
param pushWebhook string
param smsWebhook string
param wechatWebhook string
param emailWebhook string
param operatorsWebhook string
@secure()
param notificationWebhookSecret string
param authAuthority string
param authTenantId string
param authClientId string
param authAppIdUri string
param reconcileStockSchedule string
param expireCouponsSchedule string
param redemptionLockMinutes int
param releaseCommissionsSchedule string
param aggregateStatsSchedule string
param sendRemindersSchedule string
param auditRepairSchedule string
param statsTimeZone string
param referralAttributionDays int
param referralAttribution string
param commissionHoldingDays int
param commissionCurrency string
param approvalTopUpThreshold int
param approvalPayoutThreshold int
param instanceMemoryMB int
param maximumInstanceCount int
param alwaysReadyHttpInstances int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'functions' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReadyHttpInstances > 0 ? [{ name: 'http', instanceCount: alwaysReadyHttpInstances }] : []
      }
      runtime: { name: 'custom', version: '1.0' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        // Functions host storage, by identity.
        { name: 'AzureWebJobsStorage__accountName', value: storageAccountName }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        // Telemetry, authorized by the identity (Application Insights local auth is off).
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        // The handler's trace sampling (rate-limited; metrics and logs are never sampled): docs/operations.md#sampling.
        { name: 'Telemetry__TracesPerSecond', value: telemetryTracesPerSecond }
        // Service Bus bindings (Connection = "ServiceBusConnection"), by identity.
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBusNamespaceFqdn }
        { name: 'ServiceBusConnection__credential', value: 'managedidentity' }
        { name: 'ServiceBusConnection__clientId', value: identityClientId }
        // The queue SettleCommission listens on (function.json: "queueName": "%OrderEventsQueue%").
        { name: 'OrderEventsQueue', value: orderEventsQueueName }
        // The queue DeliverNotifications listens on and SendReminders sends to ("%NotificationsQueue%").
        { name: 'NotificationsQueue', value: notificationsQueueName }
        // Provider webhooks per channel (https; empty = channel not delivered) and the key that signs each call:
        // a secure parameter, or a Key Vault reference (@Microsoft.KeyVault(SecretUri=...)) passed as its value.
        { name: 'NotificationDelivery__PushWebhook', value: pushWebhook }
        { name: 'NotificationDelivery__SmsWebhook', value: smsWebhook }
        { name: 'NotificationDelivery__WechatWebhook', value: wechatWebhook }
        { name: 'NotificationDelivery__EmailWebhook', value: emailWebhook }
        { name: 'NotificationDelivery__OperatorsWebhook', value: operatorsWebhook }
        { name: 'NotificationDelivery__WebhookSecret', value: notificationWebhookSecret }
        { name: 'NotificationDelivery__TimeoutSeconds', value: '10' }
        { name: 'NotificationDelivery__Retries', value: '2' }
        { name: 'NotificationDelivery__RetryDelayMilliseconds', value: '500' }
        // The handler's own settings (docs/configuration.md).
        { name: 'Cosmos__Endpoint', value: cosmosEndpoint }
        { name: 'Cosmos__Database', value: cosmosDatabaseName }
        { name: 'Cosmos__ClientId', value: identityClientId }
        { name: 'Cosmos__CallTimeoutSeconds', value: '10' }
        // The app's blobs (payout CSVs, media), by identity; links to one blob are user-delegation SAS.
        { name: 'Blobs__ServiceUri', value: storageBlobEndpoint }
        { name: 'Blobs__ClientId', value: identityClientId }
        // Publish uploads only once Defender scanned them clean: on exactly when the scanning is deployed.
        { name: 'Media__ScanUploads', value: string(mediaMalwareScanning) }
        { name: 'Media__ScanWaitSeconds', value: '5' }
        // Campaign media (docs/media.md): upload links are user-delegation SAS signed with the identity.
        { name: 'Media__BlobEndpoint', value: mediaBlobEndpoint }
        { name: 'Media__ClientId', value: identityClientId }
        { name: 'Media__PublicBaseUrl', value: mediaPublicBaseUrl }
        { name: 'Media__UploadMinutes', value: '10' }
        // The API's Entra ID registration; the accepted issuers and audiences follow from it (Identity/AuthOptions.cs).
        { name: 'Auth__Authority', value: authAuthority }
        { name: 'Auth__TenantId', value: authTenantId }
        { name: 'Auth__ClientId', value: authClientId }
        { name: 'Auth__AppIdUri', value: authAppIdUri }
        // The operator console's sign-in (MSAL, authorization code + PKCE): the API registration is also its SPA client
        // (redirect URI https://<app>/console/, docs/deploy.md), asking for the scope the registration exposes. Not secrets.
        { name: 'Console__ClientId', value: authClientId }
        { name: 'Console__ApiScope', value: '${authAppIdUri}/access_as_user' }
        { name: 'Campaigns__CacheSeconds', value: '5' }
        { name: 'Stock__QuietMinutes', value: '5' }
        { name: 'Stock__BudgetHoldsPerShard', value: '5000' }
        { name: 'ReconcileStockSchedule', value: reconcileStockSchedule }
        { name: 'ExpireCouponsSchedule', value: expireCouponsSchedule }
        { name: 'Redemption__LockMinutes', value: string(redemptionLockMinutes) }
        { name: 'ReleaseCommissionsSchedule', value: releaseCommissionsSchedule }
        { name: 'AggregateStatsSchedule', value: aggregateStatsSchedule }
        { name: 'SendRemindersSchedule', value: sendRemindersSchedule }
        // The audit trail (docs/audit.md): intents older than the grace belong to calls that died; the repair completes them.
        { name: 'AuditRepairSchedule', value: auditRepairSchedule }
        { name: 'Audit__RepairGraceMinutes', value: '15' }
        { name: 'Reminders__RecordRetentionDays', value: '90' }
        { name: 'Reminders__RequeueAfterMinutes', value: '10' }
        { name: 'Reminders__MarginMinutes', value: '60' }
        // Operator alerts (raised by SendReminders): thresholds in percent and hours, record retention in days.
        { name: 'Alerts__BudgetPercent', value: '10' }
        { name: 'Alerts__StockPercent', value: '10' }
        { name: 'Alerts__EndingHours', value: '24' }
        { name: 'Alerts__RetentionDays', value: '90' }
        { name: 'Alerts__ApprovalRequests', value: 'true' }
        { name: 'Stats__FactDays', value: '14' }
        { name: 'Stats__TimeZone', value: statsTimeZone }
        { name: 'Referrals__AttributionDays', value: string(referralAttributionDays) }
        { name: 'Referrals__Attribution', value: referralAttribution }
        { name: 'Commissions__HoldingDays', value: string(commissionHoldingDays) }
        { name: 'Commissions__Currency', value: commissionCurrency }
        // Maker-checker on money (docs/approvals.md): above these (minor units) a top-up or a payout batch waits for a decision.
        { name: 'Approvals__TopUpThreshold', value: string(approvalTopUpThreshold) }
        { name: 'Approvals__PayoutThreshold', value: string(approvalPayoutThreshold) }
        // Retention of finished data, in days (Cosmos per-item TTL; docs/configuration.md, docs/scale.md).
        { name: 'DueIndex__DoneRetentionDays', value: '3' }
        { name: 'Redemption__FinishedRetentionDays', value: '180' }
        { name: 'Quarantine__RetentionDays', value: '30' }
        // What one timer run may take on (Hosting/TimerRun.cs): below the 5-minute schedules and host.json's functionTimeout.
        { name: 'Timers__RunSeconds', value: '240' }
        { name: 'Timers__Parallelism', value: '8' }
        { name: 'Timers__PageSize', value: '100' }
      ]
    }
  }
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
