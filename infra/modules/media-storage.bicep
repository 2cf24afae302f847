// Campaign media (docs/media.md, docs/decisions/0007-public-media-account.md): an account of its own, apart from the
// host's storage, so that the one thing the public may read (the "media" container, renditions only) never sits beside
// the host's state or the deployment package. Shared-key access is off: the app signs upload links as a user-delegation
// SAS with its managed identity. Clients PUT their uploads into the private "uploads" container through such a link;
// the app checks them and writes renditions to "media"; uploads never completed are deleted after a day.
param name string
param location string
param tags object
param appPrincipalId string
@description('Origins allowed to PUT uploads from a browser (the operators\' console, the app\'s web front): https://console.example.com')
param corsOrigins array = []
@description('Enable Defender for Storage with on-upload malware scanning on this account, where uploads land (docs/malware-scanning.md).')
param malwareScanning bool = false
@description('Most GB scanned per month (-1 = no cap); uploads beyond it are not scanned, so never published.')
param malwareScanningCapGBPerMonth int = 5000

// Owner, not Contributor: reading Defender's verdict (a blob index tag) needs blobs/tags/read, which only Owner has.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Lets the identity ask for a user-delegation key (the key upload links are signed with), nothing else.
var storageBlobDelegator = 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    // Only so that the "media" container below may be public-read: every other container stays private.
    allowBlobPublicAccess: true
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // Browsers PUT uploads straight to the account: their origins must be allowed, with the headers the link needs.
    cors: {
      corsRules: empty(corsOrigins) ? [] : [
        {
          allowedOrigins: corsOrigins
          allowedMethods: ['PUT', 'OPTIONS']
          allowedHeaders: ['content-type', 'x-ms-blob-type', 'x-ms-version', 'x-ms-client-request-id']
          exposedHeaders: ['etag', 'x-ms-request-id']
          maxAgeInSeconds: 3600
        }
      ]
    }
  }
}

resource uploads 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'uploads'
  properties: { publicAccess: 'None' }
}

resource media 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'media'
  properties: { publicAccess: 'Blob' }
}

// An upload link is valid minutes; what was uploaded and never completed (or refused and left) goes after a day.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-uploads'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['uploads/'] }
            actions: { baseBlob: { delete: { daysAfterCreationGreaterThan: 1 } } }
          }
        }
      ]
    }
  }
}

// On-upload malware scanning: Defender tags each scanned blob "Malware Scanning scan result" (Media/MalwareScan.cs).
resource defender 'Microsoft.Security/defenderForStorageSettings@2022-12-01-preview' = if (malwareScanning) {
  name: 'current'
  scope: account
  properties: {
    isEnabled: true
    overrideSubscriptionLevelSettings: true
    malwareScanning: {
      onUpload: {
        isEnabled: true
        capGBPerMonth: malwareScanningCapGBPerMonth
      }
    }
    sensitiveDataDiscovery: { isEnabled: false }
  }
}

resource contributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageBlobDataOwner)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource delegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageBlobDelegator)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegator)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
