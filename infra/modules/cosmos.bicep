// Cosmos DB for NoSQL: the account (local auth off), the database, and every container the code uses
// with the partition key path and excluded index paths its store declares (functions/Marketing.Functions:
// each store's ContainerSpec; tests/Marketing.Tests/InfraContractTests checks they agree on the compiled
// template). Indexing excludes large maps and arrays that no query filters or sorts on, which makes writes
// cheaper. Index path grammar (Azure refuses anything else; the emulator does not): start at /, name
// properties (quoted with "..." unless letters, digits and _), address array elements with [] (never *),
// end with /? (a scalar) or /* (everything below). See infra/README.md.
// defaultTtl -1 turns time to live on with no default: only items that carry their own "ttl" (finished due
// entries, finished redemptions, quarantined events) expire. Without it Cosmos ignores those "ttl"s. Containers
// without defaultTtl have TTL off (docs/scale.md).
param name string
param location string
param tags object
@allowed(['serverless', 'autoscale'])
param capacityMode string
param autoscaleMaxThroughput int
param appPrincipalId string
param deployerPrincipalId string

var databaseName = 'marketing'

type containerSpec = {
  name: string
  partitionKeyPath: string
  excludedPaths: string[]
  @description('-1: time to live on, no default (items with their own "ttl" expire); absent: off.')
  defaultTtl: int?
}

var containers containerSpec[] = [
  {
    name: 'campaigns'
    partitionKeyPath: '/catalog'
    excludedPaths: ['/terms/categories/*', '/terms/validity/*', '/"_etag"/?']
  }
  {
    name: 'stock'
    partitionKeyPath: '/campaignId'
    excludedPaths: ['/orders/*', '/applying/*', '/topUps/*', '/topUpKeys/*', '/givenBack/*', '/"_etag"/?']
  }
  {
    name: 'wallets'
    partitionKeyPath: '/customerId'
    excludedPaths: ['/coupons/[]/response/?', '/coupons/[]/requestHash/?', '/coupons/[]/categories/*', '/keys/*', '/"_etag"/?']
  }
  {
    // One record per order; cancelled and refunded ones expire (their "ttl"), used ones never do.
    name: 'redemptions'
    partitionKeyPath: '/orderId'
    excludedPaths: ['/history/*', '/requestHash/?', '/"_etag"/?']
    defaultTtl: -1
  }
  {
    // The timers' time-bucket index (coupon expiry, commission release): 16 partitions per track and UTC hour;
    // done entries expire (their "ttl").
    name: 'due'
    partitionKeyPath: '/bucket'
    excludedPaths: ['/items/*', '/reminders/*', '/"_etag"/?']
    defaultTtl: -1
  }
  {
    // Promoters (one partition each) and their referral codes (one "codes" partition).
    name: 'promoters'
    partitionKeyPath: '/partition'
    excludedPaths: ['/"_etag"/?']
  }
  {
    // Each buyer's referral bindings.
    // A buyer's bindings, and their recent referral visits (each expires after 30 days: its "ttl").
    name: 'referrals'
    partitionKeyPath: '/buyerId'
    excludedPaths: ['/bindings/*', '/"_etag"/?']
    defaultTtl: -1
  }
  {
    // One document per commission rule version, all in the programme's partition (a few KB each, never
    // growing). Replaces 'commission-rules' (/id, one document with every version): environments deployed
    // before keep that container (deployments are incremental); the app copies its versions over once.
    name: 'commission-rule-versions'
    partitionKeyPath: '/programme'
    excludedPaths: ['/level1/*', '/level2/*', '/"_etag"/?']
  }
  {
    // One settlement record per order: the arbiter of its order events.
    name: 'settlements'
    partitionKeyPath: '/orderId'
    excludedPaths: ['/paid/lines/*', '/events/*', '/"_etag"/?']
  }
  {
    // Commission ledger, one partition per promoter.
    name: 'ledger'
    partitionKeyPath: '/promoterId'
    excludedPaths: ['/"_etag"/?']
  }
  {
    // Order events that could not be settled, by UTC day; each expires after the retention (its "ttl").
    name: 'quarantine'
    partitionKeyPath: '/day'
    excludedPaths: ['/body/?', '/"_etag"/?']
    defaultTtl: -1
  }
  {
    name: 'payouts'
    partitionKeyPath: '/batchId'
    excludedPaths: ['/entryIds/*', '/skipped/*', '/"_etag"/?']
  }
  {
    // Campaign statistics (docs/stats.md): a campaign's day and the marks of the facts counted in it share a
    // partition ("<campaignId>|<yyyy-MM-dd>"); the change feed cursors live in "feeds". Marks expire (their "ttl").
    name: 'stats'
    partitionKeyPath: '/pk'
    excludedPaths: ['/cells/*', '/"_etag"/?']
    defaultTtl: -1
  }
  {
    // Notifications (docs/notifications.md): a customer's messages and preferences; operator alerts in "operators".
    // Records expire (their "ttl").
    name: 'notifications'
    partitionKeyPath: '/customerId'
    excludedPaths: ['/body/?', '/couponIds/*', '/"_etag"/?']
    defaultTtl: -1
  }
  {
    // Campaign media (docs/media.md): one item per upload, in its campaign's partition. Pending and refused items
    // expire (their "ttl"); ready ones stay.
    name: 'media'
    partitionKeyPath: '/campaignId'
    excludedPaths: ['/renditions/*', '/refusal/*', '/"_etag"/?']
    defaultTtl: -1
  }
  {
    // The audit trail (docs/audit.md): one partition per target ("campaign/cmp_..."). Queries filter on target, actor.sub,
    // state and occurredAt and sort on occurredAt; the states and the diff (most of an entry) are never indexed.
    name: 'audit'
    partitionKeyPath: '/target'
    excludedPaths: ['/before/*', '/after/*', '/changes/*', '/actor/roles/*', '/reason/?', '/beforeHash/?', '/statesOmitted/?', '/"_etag"/?']
  }
]
// Built-in "Cosmos DB Built-in Data Contributor" data-plane role.
var dataContributor = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    locations: [
      { locationName: location, failoverPriority: 0, isZoneRedundant: false }
    ]
    capabilities: capacityMode == 'serverless' ? [{ name: 'EnableServerless' }] : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: { id: databaseName }
    options: capacityMode == 'autoscale' ? { autoscaleSettings: { maxThroughput: autoscaleMaxThroughput } } : {}
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [for c in containers: {
  parent: database
  name: c.name
  properties: {
    resource: {
      id: c.name
      partitionKey: { paths: [c.partitionKeyPath], kind: 'Hash', version: 2 }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [{ path: '/*' }]
        excludedPaths: [for p in c.excludedPaths: { path: p }]
      }
      defaultTtl: c.?defaultTtl
    }
  }
}]

resource appDataAccess 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: account
  name: guid(account.id, appPrincipalId, dataContributor)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributor}'
    principalId: appPrincipalId
    scope: account.id
  }
}

resource deployerDataAccess 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = if (!empty(deployerPrincipalId)) {
  parent: account
  name: guid(account.id, deployerPrincipalId, dataContributor)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributor}'
    principalId: deployerPrincipalId
    scope: account.id
  }
}

output endpoint string = account.properties.documentEndpoint
output databaseName string = databaseName
