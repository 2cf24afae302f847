// Alerts (issue 18): one action group and one rule per failure an on-call engineer must act on. Each rule's runbook
// is in docs/operations.md ("Alerts"), under the rule's name. Thresholds and windows are parameters of main.bicep.
// Log rules query the Application Insights resource with the classic table names (requests, dependencies,
// customMetrics) and the metric names of functions/Marketing.Functions/Telemetry/Metrics.cs; the tests check that
// every marketing.* name and outcome in these queries is one the code emits.
param location string
param tags object
@description('Appended to every rule name (the deployment\'s resource token): rule names are unique per resource group.')
param suffix string
param appInsightsName string
@description('The Log Analytics workspace behind Application Insights: the rules\' queries read its tables.')
param logAnalyticsName string
param serviceBusNamespaceName string
param orderEventsQueueName string
param notificationsQueueName string

@description('Email address the action group notifies; empty = no email receiver.')
param alertEmail string
@secure()
@description('Webhook (https) the action group posts the common alert schema to (e.g. an on-call tool); empty = none.')
param alertWebhookUrl string

param alertOrderEventsDeadLetters int
param alertNotificationsDeadLetters int
param alertHttp5xxPercent int
param alertHttp5xxMinRequests int
param alertHttp5xxWindow string
param alertCosmosThrottledPercent int
param alertCosmosMinCalls int
param alertCosmosWindow string
param alertTimerFailuresInARow int
param alertTimerFailuresWindow string
param alertTimerBacklogAgeSeconds int
param alertTimerSilentMinutes int
param alertStatsLagSeconds int
param alertWebhookFailurePercent int
param alertWebhookMinCalls int
param alertWebhookWindow string

// Reader: enough to query the Application Insights resource's logs (Microsoft.Insights/components/query/read).
var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
// Log Analytics Reader: query the workspace the component's data is stored in (workspaces/query/read).
var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'
var evaluationFrequency = 'PT5M'

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: serviceBusNamespaceName
}

// Always deployed, so the rules always name it; with neither receiver set the alerts still fire and are listed under
// Azure Monitor > Alerts, but nobody is told (docs/operations.md, "Alerts").
resource onCall 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-marketing-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'marketing'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      { name: 'on-call-email', emailAddress: alertEmail, useCommonAlertSchema: true }
    ]
    webhookReceivers: empty(alertWebhookUrl) ? [] : [
      { name: 'on-call-webhook', serviceUri: alertWebhookUrl, useCommonAlertSchema: true }
    ]
  }
}

var actions = { actionGroups: [onCall.id] }

// --- Service Bus: a message that failed every delivery ------------------------------------------------------------
// DeadletteredMessages is the count in the queue's dead-letter queue (a gauge): it stays above 0 until someone
// resubmits, so the alert stays fired until the repair is done.
var deadLetterQueues = [
  { rule: 'order-events-dead-letters', queue: orderEventsQueueName, threshold: alertOrderEventsDeadLetters, severity: 1 }
  { rule: 'notifications-dead-letters', queue: notificationsQueueName, threshold: alertNotificationsDeadLetters, severity: 2 }
]

resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = [for q in deadLetterQueues: {
  name: '${q.rule}-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Messages in the ${q.queue} dead-letter queue (docs/operations.md, runbook "${q.rule}").'
    severity: q.severity
    enabled: true
    scopes: [serviceBus.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'dead-lettered'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [{ name: 'EntityName', operator: 'Include', values: [q.queue] }]
          operator: 'GreaterThan'
          threshold: q.threshold
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [{ actionGroupId: onCall.id }]
  }
}]

// --- Log rules over Application Insights ----------------------------------------------------------------------------
// requests and dependencies are sampled by the exporter: counts are sum(itemCount), never count().

// Handler and host both write a requests row per HTTP call (one trace): the percentage is the same either way.
var http5xxQuery = '''
requests
| where url has "/api/"
| summarize total = sum(itemCount), failed = sumif(itemCount, toint(resultCode) >= 500)
| where total >= minRequests
| project failedPercent = 100.0 * failed / total
'''

// The Cosmos SDK's operation spans end with the final status, after the SDK's own retries: a 429 here is a call the
// platform answered "busy" (503), not a throttled attempt the SDK absorbed. A percentage, so it does not need
// retuning as traffic grows (the account's TotalRequests metric counts attempts, not outcomes).
var cosmosQuery = '''
dependencies
| where type has "DocumentDB" or type has "Cosmos"
| extend status = coalesce(tostring(customDimensions["db.response.status_code"]), resultCode)
| summarize calls = sum(itemCount), throttled = sumif(itemCount, status == "429")
| where calls >= minCalls
| project throttledPercent = 100.0 * throttled / calls
'''

// The failed runs of each timer since its last run that did not fail. A run that completes or stops (time up, work
// left) ends the streak. Runs are exported once a minute: a failed and a good run in the same minute are not ordered.
var timerFailuresQuery = '''
let runs = customMetrics
    | where name == "marketing.timer.runs"
    | extend function = tostring(customDimensions["function"]), outcome = tostring(customDimensions["outcome"]);
runs
| summarize lastGood = maxif(timestamp, outcome != "failed") by function
| join kind=inner (runs | where outcome == "failed") on function
| where isnull(lastGood) or timestamp > lastGood
| summarize failedInARow = sum(valueSum) by function
'''

// The age each timer's last run reported: how long the oldest entry it left due has been due.
var timerBacklogQuery = '''
customMetrics
| where name == "marketing.timer.backlog_age"
| summarize arg_max(timestamp, valueSum) by function = tostring(customDimensions["function"])
| project function, backlogAgeSeconds = valueSum
'''

// Minutes since each timer function last reported a run, whatever its outcome: a timer the host stopped calling
// (disabled, a schedule setting broken, the app stopped) reports nothing, so timer-failing and timer-backlog stay
// quiet. The list is every function mapped with MapTimerFunction (the tests check it): a timer with no run in the
// rule's 6-hour window has no row in customMetrics, and the left outer join keeps it, as silent for the whole window.
// One threshold for all: it must exceed the slowest schedule (ReconcileStock, every 10 minutes by default).
var timerSilentQuery = '''
let timers = datatable(function: string) ["ExpireCoupons", "ReleaseCommissions", "SendReminders", "AggregateStats", "ReconcileStock", "AuditRepair"];
timers
| join kind=leftouter (
    customMetrics
    | where name == "marketing.timer.runs"
    | summarize lastRun = max(timestamp) by function = tostring(customDimensions["function"])
  ) on function
| project function, silentMinutes = coalesce(datetime_diff("minute", now(), lastRun), 360)
'''

// Each report says "lag seconds at this instant"; lag now = reported lag + time since the report, and the smallest
// of those is the lag of the newest statistics. No report in the hour (AggregateStats not running) counts as an hour.
var statsLagQuery = '''
customMetrics
| where name == "marketing.stats.lag"
| summarize lagSeconds = min(valueSum + datetime_diff("second", now(), timestamp))
| project lagSeconds = coalesce(lagSeconds, 3600.0)
'''

// Every call to a provider webhook is one histogram measurement: valueCount counts calls.
var webhookQuery = '''
customMetrics
| where name == "marketing.webhook.duration"
| extend channel = tostring(customDimensions["channel"]), outcome = tostring(customDimensions["outcome"])
| summarize calls = sum(valueCount), failed = sumif(valueCount, outcome in ("rejected", "unavailable", "not_allowed")) by channel
| where calls >= minCalls
| project channel, failedPercent = 100.0 * failed / calls
'''

var logRules = [
  {
    rule: 'http-5xx'
    description: 'More than ${alertHttp5xxPercent}% of API requests answered 5xx'
    severity: 1
    window: alertHttp5xxWindow
    query: 'let minRequests = ${alertHttp5xxMinRequests};\n${http5xxQuery}'
    measure: 'failedPercent'
    operator: 'GreaterThan'
    threshold: alertHttp5xxPercent
    dimensions: []
  }
  {
    rule: 'cosmos-throttling'
    description: 'More than ${alertCosmosThrottledPercent}% of Cosmos DB calls ended throttled (429)'
    severity: 2
    window: alertCosmosWindow
    query: 'let minCalls = ${alertCosmosMinCalls};\n${cosmosQuery}'
    measure: 'throttledPercent'
    operator: 'GreaterThan'
    threshold: alertCosmosThrottledPercent
    dimensions: []
  }
  {
    rule: 'timer-failing'
    description: 'A timer function failed ${alertTimerFailuresInARow} runs in a row'
    severity: 2
    window: alertTimerFailuresWindow
    query: timerFailuresQuery
    measure: 'failedInARow'
    operator: 'GreaterThanOrEqual'
    threshold: alertTimerFailuresInARow
    dimensions: [{ name: 'function', operator: 'Include', values: ['*'] }]
  }
  {
    rule: 'timer-backlog'
    description: 'A timer left work due for more than ${alertTimerBacklogAgeSeconds} s'
    severity: 2
    window: 'PT1H'
    query: timerBacklogQuery
    measure: 'backlogAgeSeconds'
    operator: 'GreaterThan'
    threshold: alertTimerBacklogAgeSeconds
    dimensions: [{ name: 'function', operator: 'Include', values: ['*'] }]
  }
  {
    rule: 'timer-silent'
    description: 'A timer function reported no run for more than ${alertTimerSilentMinutes} minutes'
    severity: 2
    window: 'PT6H'
    query: timerSilentQuery
    measure: 'silentMinutes'
    operator: 'GreaterThan'
    threshold: alertTimerSilentMinutes
    dimensions: [{ name: 'function', operator: 'Include', values: ['*'] }]
  }
  {
    rule: 'stats-lag'
    description: 'Campaign statistics more than ${alertStatsLagSeconds} s behind'
    severity: 3
    window: 'PT1H'
    query: statsLagQuery
    measure: 'lagSeconds'
    operator: 'GreaterThan'
    threshold: alertStatsLagSeconds
    dimensions: []
  }
  {
    rule: 'webhook-failures'
    description: 'More than ${alertWebhookFailurePercent}% of calls to a notification provider failed'
    severity: 2
    window: alertWebhookWindow
    query: 'let minCalls = ${alertWebhookMinCalls};\n${webhookQuery}'
    measure: 'failedPercent'
    operator: 'GreaterThan'
    threshold: alertWebhookFailurePercent
    dimensions: [{ name: 'channel', operator: 'Include', values: ['*'] }]
  }
]

// One user-assigned identity runs every log rule's query: without one a rule queries with the rights of whoever last
// saved it, which a pipeline or a departed engineer may lose. Not a system-assigned identity per rule: a rule deleted
// and recreated would get a new principal, and its role assignment (named after the rule) could not be updated to it
// (RoleAssignmentUpdateNotPermitted); this identity and its two assignments outlive any rule.
resource alertsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-alerts-${suffix}'
  location: location
  tags: tags
}

// A log rule's managed identity needs read access to every workspace its query touches, not only to the resource it
// is scoped to (Azure Monitor, "Create a log alert rule"): Reader on the component and Log Analytics Reader on its
// workspace, so the queries run whatever the workspace's access mode.
resource alertsReadInsights 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, alertsIdentity.id, reader)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
    principalId: alertsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource alertsReadWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, alertsIdentity.id, logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
    principalId: alertsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// After the role assignments: Azure runs a rule's query with its identity when the rule is saved.
resource logAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for r in logRules: {
  name: '${r.rule}-${suffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${alertsIdentity.id}': {} }
  }
  properties: {
    displayName: r.rule
    description: '${r.description} (docs/operations.md, runbook "${r.rule}").'
    severity: r.severity
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: evaluationFrequency
    windowSize: r.window
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: r.query
          timeAggregation: 'Maximum'
          metricMeasureColumn: r.measure
          dimensions: r.dimensions
          operator: r.operator
          threshold: r.threshold
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: actions
  }
  dependsOn: [alertsReadInsights, alertsReadWorkspace]
}]

output actionGroupId string = onCall.id
