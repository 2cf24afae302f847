// Service Bus (Standard) with the order-events queue the order system sends to, and the notifications queue
// SendReminders sends to and DeliverNotifications receives from (both the app, by its identity). Local (SAS) auth is off:
// the app receives with its identity, the order system sends with its own.
param name string
param location string
param tags object
param appPrincipalId string
param orderSystemPrincipalId string

var dataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var dataSender = '69a216fc-b8fb-44d8-bc22-1f3c2552a1b9'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

resource orderEvents 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: 'order-events'
  properties: {
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    lockDuration: 'PT1M'
    // The order system may resend an event (retries, outbox replays): the broker drops exact
    // duplicates by MessageId within this window; consumers stay idempotent beyond it.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT1H'
  }
}

// One message per external delivery of a notification (its body names the record). A message whose provider keeps
// failing (5xx, timeouts) is delivered again up to maxDeliveryCount times, then dead-lettered; a message the
// provider refuses (4xx) is completed at once and its record marked failed (docs/notifications.md, "Delivery").
resource notifications 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: 'notifications'
  properties: {
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P2D'
    // Longer than one delivery may take: NotificationDelivery__TimeoutSeconds x (Retries + 1) plus the backoff.
    lockDuration: 'PT2M'
    // No duplicate detection: it works by MessageId, which a custom handler's output binding cannot set
    // (docs/notifications.md). A repeated message is dropped by its record instead (delivered or failed: no call).
  }
}

// SendReminders' Service Bus output binding sends with the same identity.
resource appSendsNotifications 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(notifications.id, appPrincipalId, dataSender)
  scope: notifications
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The app receives from both queues (SettleCommission, DeliverNotifications): one assignment on the namespace,
// whose only queues are the app's.
resource appReceives 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, appPrincipalId, dataReceiver)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiver)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource orderSystemSends 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(orderSystemPrincipalId)) {
  name: guid(orderEvents.id, orderSystemPrincipalId, dataSender)
  scope: orderEvents
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSender)
    principalId: orderSystemPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output queueName string = orderEvents.name
output notificationsQueueName string = notifications.name
