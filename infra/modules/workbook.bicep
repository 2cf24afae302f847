// The operations workbook (issue 18): the platform's business metrics per campaign, timers, statistics, notification
// providers, Cosmos DB and the API's 5xx, on the Application Insights resource. Its content is infra/workbook.json
// (edit it in the portal's Advanced Editor, paste it back); its queries use the names of Telemetry/Metrics.cs, which the
// tests check.
param location string
param tags object
param appInsightsName string

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource operations 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID: a fixed one per resource group, so a redeploy updates it.
  name: guid(resourceGroup().id, 'marketing-operations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Marketing platform: operations'
    category: 'workbook'
    sourceId: appInsights.id
    // The component as the queries' resource wherever the workbook is opened (Azure Monitor > Workbooks, a link): without
    // it only the component's own Workbooks blade gives them one. Not in workbook.json, which names no deployment.
    serializedData: string(union(loadJsonContent('../workbook.json'), { fallbackResourceIds: [appInsights.id] }))
  }
}
