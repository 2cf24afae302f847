// The marketing platform on Azure: one resource group with a Flex Consumption function app (custom
// handler), Cosmos DB (NoSQL), Storage, Service Bus, Log Analytics + Application Insights, and one
// user-assigned managed identity that the app uses for everything. No keys or connection strings:
// every data plane is reached with the identity and a least-privilege role assignment.
// azd: `azd up` (see docs/deploy.md). Plain: `az deployment sub create -f infra/main.bicep ...`.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd), used in resource names and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Azure region for every resource.')
param location string

@description('Object id of the deploying user or pipeline; gets Cosmos data access for smoke tests. Empty = none.')
param principalId string = ''

@allowed(['serverless', 'autoscale'])
@description('Cosmos DB capacity: serverless (pay per request, default) or autoscale provisioned throughput on the database.')
param cosmosCapacityMode string = 'serverless'

@minValue(1000)
@description('Autoscale maximum RU/s of the database (autoscale mode only); it scales between 10% and this.')
param cosmosAutoscaleMaxThroughput int = 1000

@allowed([512, 2048, 4096])
@description('Memory of each function app instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Upper bound of function app instances (caps cost and protects Cosmos from a stampede).')
param maximumInstanceCount int = 100

@minValue(0)
@description('Always-ready instances for HTTP functions (0 = scale to zero; >0 removes cold starts, billed while idle).')
param alwaysReadyHttpInstances int = 0

// The API's Entra ID app registration (docs/deploy.md, "Entra ID"). The app accepts its v1 and v2 access tokens:
// iss https://sts.windows.net/<tenant>/ or https://login.microsoftonline.com/<tenant>/v2.0, aud the Application ID
// URI or the client id; signing keys come from the tenant's OpenID Connect metadata (authority derived below).
@description('Directory (tenant) id of the API app registration (a GUID).')
param authTenantId string

@description('Application (client) id of the API app registration (a GUID): the audience of v2 tokens.')
param authClientId string

@description('Application ID URI of the API app registration, e.g. api://marketing-platform: the audience of v1 tokens.')
param authAppIdUri string

@description('Object id of the order system principal that sends order events (Service Bus Data Sender). Empty = none.')
param orderSystemPrincipalId string = ''

@description('NCRONTAB schedule of the ReconcileStock timer function.')
param reconcileStockSchedule string = '0 */10 * * * *'

@description('NCRONTAB schedule of the ExpireCoupons timer (expires coupons and lapsed locks, ends campaigns).')
param expireCouponsSchedule string = '0 */5 * * * *'

@description('How long a coupon lock holds for an unpaid order, in minutes.')
@minValue(1)
@maxValue(1440)
param redemptionLockMinutes int = 30

@description('NCRONTAB schedule of the ReleaseCommissions timer (commissions whose holding period ended become available).')
param releaseCommissionsSchedule string = '0 */5 * * * *'

@description('NCRONTAB schedule of the AggregateStats timer function, which folds the change feeds into campaign statistics (docs/stats.md).')
param aggregateStatsSchedule string = '0 * * * * *'

@description('NCRONTAB schedule of the SendReminders timer function, which sends expiry reminders (docs/notifications.md).')
param sendRemindersSchedule string = '0 */5 * * * *'

@description('NCRONTAB schedule of the AuditRepair timer function, which completes the audit entries of calls that died (docs/audit.md).')
param auditRepairSchedule string = '0 */5 * * * *'

@description('The platform\'s time zone (IANA id): where the operators\' overview starts "today" and "yesterday".')
param statsTimeZone string = 'Asia/Shanghai'

@description('Days a referral visit binds the buyer to the promoter.')
@minValue(1)
@maxValue(365)
param referralAttributionDays int = 30

@description('Which visit wins while a binding lasts: FirstTouch (a later code does not steal the buyer) or LastTouch.')
@allowed(['FirstTouch', 'LastTouch'])
param referralAttribution string = 'FirstTouch'

@description('Days a commission stays pending after payment (the refund window) before it can be paid out.')
@minValue(0)
@maxValue(365)
param commissionHoldingDays int = 7

@description('ISO 4217 currency the distribution programme settles in.')
param commissionCurrency string = 'CNY'

@description('Maker-checker on money (docs/approvals.md): a budget top-up above this many minor units waits for an approver; 0 = every top-up does.')
@minValue(0)
@maxValue(1000000000000)
param approvalTopUpThreshold int = 1000000

@description('A payout batch whose total is above this many minor units waits for finance to approve it; 0 = every batch that pays anything does.')
@minValue(0)
@maxValue(1000000000000)
param approvalPayoutThreshold int = 5000000

@description('Provider webhook (https) per notification channel; empty = that channel is not delivered (records marked failed).')
param notificationPushWebhook string = ''
param notificationSmsWebhook string = ''
param notificationWechatWebhook string = ''
param notificationEmailWebhook string = ''

@description('The operators\' channel (operator alerts): https URL of a DingTalk/Feishu/Slack-compatible receiver or a relay; it receives the signed NotificationMessage JSON. Empty = alerts are recorded, not delivered.')
param notificationOperatorsWebhook string = ''

@secure()
@description('HMAC-SHA256 key signing every provider webhook call (at least 32 characters when a webhook is set); or a Key Vault reference.')
param notificationWebhookSecret string = ''
@description('More origins allowed to upload campaign media from a browser (app web fronts), e.g. ["https://h5.example.com"]; the console on the function app\'s own origin is always allowed.')
param mediaCorsOrigins array = []
@description('Where the app\'s clients read published media: a CDN endpoint in front of the media container; empty = the container\'s own URL.')
param mediaPublicBaseUrl string = ''

@description('Enable Defender for Storage on-upload malware scanning on the storage account; uploads are then published only once scanned clean (Media__ScanUploads). Billed per GB scanned.')
param mediaMalwareScanning bool = false

@minValue(-1)
@description('Most GB Defender scans per month (-1 = no cap). Beyond it uploads are not scanned, so they are never published.')
param mediaMalwareScanningCapGBPerMonth int = 5000

@description('Traces (a request with its Cosmos calls) the handler exports per second per instance; metrics and logs are never sampled. A number as text: 5 is the Azure Monitor distro\'s default; raise it (e.g. 1000) to see every trace during an incident, at the ingestion cost.')
param telemetryTracesPerSecond string = '5'

// Alerts (infra/modules/alerts.bicep; each rule's runbook: docs/operations.md, "Alerts").
@description('Email address the alerts\' action group notifies; empty = no email (alerts are still listed in Azure Monitor).')
param alertEmail string = ''

@secure()
@description('Webhook (https) the alerts\' action group posts the common alert schema to, e.g. an on-call tool; empty = none.')
param alertWebhookUrl string = ''

@minValue(0)
@description('Alert when the order-events dead-letter queue holds more than this many messages (unsettled commissions).')
param alertOrderEventsDeadLetters int = 0

@minValue(0)
@description('Alert when the notifications dead-letter queue holds more than this many messages (undelivered notifications).')
param alertNotificationsDeadLetters int = 0

@minValue(1)
@maxValue(100)
@description('Alert when more than this percentage of API requests answer 5xx within alertHttp5xxWindow.')
param alertHttp5xxPercent int = 5

@minValue(1)
@description('The 5xx alert ignores a window with fewer API requests than this (one failure of three is not an outage).')
param alertHttp5xxMinRequests int = 20

@allowed(['PT5M', 'PT10M', 'PT15M', 'PT30M', 'PT1H'])
@description('Window of the 5xx alert, evaluated every 5 minutes.')
param alertHttp5xxWindow string = 'PT15M'

@minValue(1)
@maxValue(100)
@description('Alert when more than this percentage of Cosmos DB calls end throttled (429, after the SDK\'s retries) within alertCosmosWindow.')
param alertCosmosThrottledPercent int = 1

@minValue(1)
@description('The Cosmos throttling alert ignores a window with fewer Cosmos DB calls than this.')
param alertCosmosMinCalls int = 100

@allowed(['PT5M', 'PT10M', 'PT15M', 'PT30M', 'PT1H'])
@description('Window of the Cosmos throttling alert, evaluated every 5 minutes.')
param alertCosmosWindow string = 'PT15M'

@minValue(1)
@description('Alert when a timer function (ExpireCoupons, ReleaseCommissions, ...) fails this many runs in a row.')
param alertTimerFailuresInARow int = 2

@allowed(['PT30M', 'PT45M', 'PT1H', 'PT2H', 'PT6H'])
@description('How far back the timer alert looks for the failed runs; longer than that many runs of the slowest schedule.')
param alertTimerFailuresWindow string = 'PT1H'

@minValue(60)
@description('Alert when a timer\'s last run left work that has been due for more than this many seconds.')
param alertTimerBacklogAgeSeconds int = 3600

@minValue(15)
@maxValue(300)
@description('Alert when a timer function has reported no run for more than this many minutes; must exceed the slowest timer schedule (ReconcileStock, every 10 minutes by default). At most 300: the rule looks 6 hours back.')
param alertTimerSilentMinutes int = 30

@minValue(60)
@description('Alert when campaign statistics are more than this many seconds behind (AggregateStats runs every minute).')
param alertStatsLagSeconds int = 900

@minValue(1)
@maxValue(100)
@description('Alert when more than this percentage of one channel\'s calls to its notification provider fail within alertWebhookWindow.')
param alertWebhookFailurePercent int = 20

@minValue(1)
@description('The provider failure alert ignores a channel with fewer calls than this in the window.')
param alertWebhookMinCalls int = 10

@allowed(['PT5M', 'PT10M', 'PT15M', 'PT30M', 'PT1H'])
@description('Window of the provider failure alert, evaluated every 5 minutes.')
param alertWebhookWindow string = 'PT30M'

var abbrs = {
  resourceGroup: 'rg-'
  identity: 'id-'
  logAnalytics: 'log-'
  appInsights: 'appi-'
  storage: 'st'
  mediaStorage: 'stmd'
  cosmos: 'cosmos-'
  serviceBus: 'sb-'
  plan: 'plan-'
  functionApp: 'func-'
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
// The tenant's v2.0 authority: its metadata lists the keys that sign both token versions.
var authAuthority = '${environment().authentication.loginEndpoint}${authTenantId}/v2.0'
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.functionApp}${resourceToken}'
// The operator console is served by the function app itself (/console, docs/console.md) and PUTs campaign media uploads
// from the browser straight to the media account: its origin is always allowed there, beside any origins given. Written
// from the app's name (its default host name in Azure's public cloud), since the function app's module needs the media
// account's endpoint first. Behind a custom domain (or in another cloud) give that origin in mediaCorsOrigins too.
var consoleOrigin = 'https://${functionAppName}.azurewebsites.net'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.identity}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.logAnalytics}${resourceToken}'
    appInsightsName: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storage}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module mediaStorage 'modules/media-storage.bicep' = {
  name: 'media-storage'
  scope: rg
  params: {
    name: '${abbrs.mediaStorage}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    corsOrigins: union([consoleOrigin], mediaCorsOrigins)
    malwareScanning: mediaMalwareScanning
    malwareScanningCapGBPerMonth: mediaMalwareScanningCapGBPerMonth
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: '${abbrs.cosmos}${resourceToken}'
    location: location
    tags: tags
    capacityMode: cosmosCapacityMode
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: '${abbrs.serviceBus}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    orderSystemPrincipalId: orderSystemPrincipalId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    planName: '${abbrs.plan}${resourceToken}'
    name: functionAppName
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    mediaMalwareScanning: mediaMalwareScanning
    deploymentContainerName: storage.outputs.deploymentContainerName
    mediaBlobEndpoint: mediaStorage.outputs.blobEndpoint
    mediaPublicBaseUrl: mediaPublicBaseUrl
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    telemetryTracesPerSecond: telemetryTracesPerSecond
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    serviceBusNamespaceFqdn: serviceBus.outputs.fullyQualifiedNamespace
    orderEventsQueueName: serviceBus.outputs.queueName
    notificationsQueueName: serviceBus.outputs.notificationsQueueName
    pushWebhook: notificationPushWebhook
    smsWebhook: notificationSmsWebhook
    wechatWebhook: notificationWechatWebhook
    emailWebhook: notificationEmailWebhook
    operatorsWebhook: notificationOperatorsWebhook
    notificationWebhookSecret: notificationWebhookSecret
    authAuthority: authAuthority
    authTenantId: authTenantId
    authClientId: authClientId
    authAppIdUri: authAppIdUri
    reconcileStockSchedule: reconcileStockSchedule
    expireCouponsSchedule: expireCouponsSchedule
    redemptionLockMinutes: redemptionLockMinutes
    releaseCommissionsSchedule: releaseCommissionsSchedule
    aggregateStatsSchedule: aggregateStatsSchedule
    sendRemindersSchedule: sendRemindersSchedule
    auditRepairSchedule: auditRepairSchedule
    statsTimeZone: statsTimeZone
    referralAttributionDays: referralAttributionDays
    referralAttribution: referralAttribution
    commissionHoldingDays: commissionHoldingDays
    commissionCurrency: commissionCurrency
    approvalTopUpThreshold: approvalTopUpThreshold
    approvalPayoutThreshold: approvalPayoutThreshold
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    suffix: resourceToken
    appInsightsName: monitoring.outputs.appInsightsName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    serviceBusNamespaceName: serviceBus.outputs.name
    orderEventsQueueName: serviceBus.outputs.queueName
    notificationsQueueName: serviceBus.outputs.notificationsQueueName
    alertEmail: alertEmail
    alertWebhookUrl: alertWebhookUrl
    alertOrderEventsDeadLetters: alertOrderEventsDeadLetters
    alertNotificationsDeadLetters: alertNotificationsDeadLetters
    alertHttp5xxPercent: alertHttp5xxPercent
    alertHttp5xxMinRequests: alertHttp5xxMinRequests
    alertHttp5xxWindow: alertHttp5xxWindow
    alertCosmosThrottledPercent: alertCosmosThrottledPercent
    alertCosmosMinCalls: alertCosmosMinCalls
    alertCosmosWindow: alertCosmosWindow
    alertTimerFailuresInARow: alertTimerFailuresInARow
    alertTimerFailuresWindow: alertTimerFailuresWindow
    alertTimerBacklogAgeSeconds: alertTimerBacklogAgeSeconds
    alertTimerSilentMinutes: alertTimerSilentMinutes
    alertStatsLagSeconds: alertStatsLagSeconds
    alertWebhookFailurePercent: alertWebhookFailurePercent
    alertWebhookMinCalls: alertWebhookMinCalls
    alertWebhookWindow: alertWebhookWindow
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = functionApp.outputs.url
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output COSMOS_DATABASE string = cosmos.outputs.databaseName
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output MEDIA_STORAGE_ACCOUNT_NAME string = mediaStorage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
