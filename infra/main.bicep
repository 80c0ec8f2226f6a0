// The SSPR service in one resource group: a Function App (Python 3.11, Linux, Flex Consumption with one
// always-ready instance), its storage reached only with the app's managed identity, Key Vault for the two keys,
// Application Insights, and optionally Azure Communication Services for SMS.
//
// Kept plain on purpose: tests/unit/test_infra.py parses this file with pycep-parser, runs checkov on it, and
// also reads the app settings below as text (one setting per line, `{ name: '...', value: ... }`). Each
// `checkov:skip` comment below says why that check does not fit this service. Nothing here holds a storage key,
// a connection string with a key, or a client secret: storage, Key Vault, Application Insights and ACS are all
// reached with the app's managed identity.
// Step by step: docs/deploy.md.

targetScope = 'resourceGroup'

@description('Short name of lower-case letters and digits used in every resource name, e.g. ssprprod.')
@minLength(3)
@maxLength(11)
param baseName string

@description('Azure region of every resource (one that offers Flex Consumption).')
param location string = resourceGroup().location

@description('The Entra tenant whose users this service serves.')
param tenantId string = tenant().tenantId

@description('Application (client) id of the API app registration (SSPR_API_CLIENT_ID).')
param apiClientId string

@description('Application (client) id of the pages single-page app registration (SSPR_PAGES_CLIENT_ID).')
param pagesClientId string

@description('The mailbox that sends codes and notices (SSPR_MAIL_SENDER), e.g. no-reply@contoso.com.')
param mailSender string

@description('Public https origin (scheme and host, no path) of the app, e.g. https://sspr.contoso.com: SSPR_PUBLIC_BASE_URL (pages at <origin>/api/pages/...) and the only CORS origin. Empty = the Function App itself.')
param publicOrigin string = ''

@description('Prefix of table and queue names (letters and digits).')
param namePrefix string = 'sspr'

@description('Purge of expired state: 6-field NCRONTAB, UTC.')
param maintenanceSchedule string = '0 0 3 * * *'

@description('Scope re-sync from Graph /users/delta: 6-field NCRONTAB, UTC.')
param scopeSyncSchedule string = '0 */15 * * * *'

@description('Compliance sweep: 6-field NCRONTAB, UTC.')
param complianceSchedule string = '0 0 2 * * *'

@description('Password expiry run (who expires when, and the reminders due): 6-field NCRONTAB, UTC.')
param expirySchedule string = '0 0 6 * * *'

@description('When yesterday\'s helpdesk activity is mailed to the Global Administrators (6-field NCRONTAB, UTC).')
param helpdeskDigestSchedule string = '0 30 6 * * *'

@description('Deploy Azure Communication Services for SMS codes. The phone number is bought by hand afterwards.')
param deployAcs bool = false

@description('With deployAcs: the E.164 number that sends SMS codes (SSPR_SMS_SENDER_NUMBER). SMS stays off until it is given.')
param smsSenderNumber string = ''

@description('Where ACS keeps its data (ACS data location, e.g. Europe, United States).')
param acsDataLocation string = 'Europe'

@description('Object id of the person or pipeline that deploys (az ad signed-in-user show --query id -o tsv): gets Key Vault Secrets Officer to create the two keys, which nobody else may write.')
@minLength(36)
@maxLength(36)
param deployerPrincipalId string

@description('What deployerPrincipalId is: User for a person, ServicePrincipal for a pipeline.')
@allowed([ 'User', 'ServicePrincipal', 'Group' ])
param deployerPrincipalType string = 'User'

@description('Key Vault name (3-24 letters, digits, hyphens; unique in Azure). Empty = <baseName>-kv-<8 characters from the resource group id>. A deleted vault keeps its name for 90 days (purge protection): recover it, or choose another name here.')
@maxLength(24)
param keyVaultName string = ''

@description('Always-ready instances for HTTP triggers: 1 keeps the sign-in hook inside its 1-2 s budget.')
@minValue(1)
param alwaysReadyHttpInstances int = 1

@description('Most instances the app scales out to (bounds the Graph and Storage load). Flex Consumption accepts 40 to 1000.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

var suffix = uniqueString(resourceGroup().id)
var storageAccountName = toLower('${baseName}${take(suffix, 24 - length(baseName))}')
var functionAppName = '${baseName}-func-${take(suffix, 6)}'
var vaultName = empty(keyVaultName) ? '${baseName}-kv-${take(suffix, 8)}' : keyVaultName // at most 24 characters
var deploymentContainerName = 'app-package'
var smsOn = deployAcs && !empty(smsSenderNumber) // the app refuses ACS without a sender number
var pagesOrigin = empty(publicOrigin) ? 'https://${functionAppName}.azurewebsites.net' : publicOrigin
var codeHmacKeySecretName = 'sspr-code-hmac-key'
var totpEncryptionKeySecretName = 'sspr-totp-encryption-key'

// Built-in role definition ids (the same in every tenant).
var roleStorageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var roleStorageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var roleStorageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var roleKeyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var roleKeyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var roleMonitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var roleContributor = 'b24988ac-6180-42a0-ab88-20f7382dd24c'

// ---- monitoring ----------------------------------------------------------------------------------------------

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${baseName}-logs-${take(suffix, 6)}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${baseName}-ai-${take(suffix, 6)}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true // telemetry only with the app's Entra identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING)
  }
}

// ---- storage: tables, queues, and the host's blobs (leases, deployment package) -------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: no virtual network here, so the app reaches storage over its public endpoint; keys are off and only Entra identities with a data role get in
  // checkov:skip=CKV_AZURE_206: ZRS already keeps three copies across the region's zones; choose Standard_GZRS if the audit trail must outlive a whole region
  // checkov:skip=CKV_AZURE_43: the name is an expression checkov cannot evaluate; baseName (3-11 lower-case letters, digits) plus uniqueString is at most 24 such characters
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_ZRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // identity only: no account key works, so none can leak
    defaultToOAuthAuthentication: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 14 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
}

// ---- Key Vault: the two keys (created by hand once, see docs/deploy.md) -----------------------------------------

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: without a virtual network, App Service resolves Key Vault references over the public endpoint (trusted-services bypass does not cover it), and so does the deployer's az keyvault secret set
  // checkov:skip=CKV_AZURE_189: as above: public network access is what Key Vault references need without a virtual network; access stays RBAC-only
  name: vaultName
  location: location
  properties: {
    tenantId: tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

// ---- optional SMS: Azure Communication Services ----------------------------------------------------------------

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' = if (deployAcs) {
  name: '${baseName}-acs-${take(suffix, 6)}'
  location: 'global'
  properties: {
    dataLocation: acsDataLocation
  }
}

// ---- the Function App ----------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy of Flex Consumption exists only in some regions; docs/deploy.md says how to turn it on where it does
  name: '${baseName}-plan-${take(suffix, 6)}'
  location: location
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: a public service by design: users' browsers and Entra's sign-in hook calls reach it from the internet (or through Front Door, docs/deploy.md)
  // checkov:skip=CKV_AZURE_17: browsers and Entra present no client certificate; callers prove themselves with Entra tokens
  // checkov:skip=CKV_AZURE_212: numberOfWorkers does not apply to Flex Consumption; alwaysReady below keeps the warm instance and the platform scales out
  // checkov:skip=CKV_AZURE_213: /api/health also reports Graph faults, and a platform health check would recycle the only warm instance for one; Application Insights alerts watch it (docs/operations.md)
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  dependsOn: [ deploymentContainer ] // the first publish writes into it: nothing else in the site refers to it by symbol
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
        alwaysReady: [
          { name: 'http', instanceCount: alwaysReadyHttpInstances }
        ]
      }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      cors: {
        allowedOrigins: [ pagesOrigin ]
        supportCredentials: false
      }
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD' }
        { name: 'SSPR_ENVIRONMENT', value: 'azure' }
        { name: 'SSPR_TABLE_PREFIX', value: namePrefix }
        { name: 'SSPR_QUEUE_PREFIX', value: namePrefix }
        { name: 'SSPR_TENANT_ID', value: tenantId }
        { name: 'SSPR_API_CLIENT_ID', value: apiClientId }
        { name: 'SSPR_PAGES_CLIENT_ID', value: pagesClientId }
        { name: 'SSPR_GRAPH_CREDENTIAL', value: 'managed_identity' }
        { name: 'SSPR_MAINTENANCE_SCHEDULE', value: maintenanceSchedule }
        { name: 'SSPR_SCOPE_SYNC_SCHEDULE', value: scopeSyncSchedule }
        { name: 'SSPR_COMPLIANCE_SCHEDULE', value: complianceSchedule }
        { name: 'SSPR_EXPIRY_SCHEDULE', value: expirySchedule }
        { name: 'SSPR_HELPDESK_DIGEST_SCHEDULE', value: helpdeskDigestSchedule }
        { name: 'SSPR_CODE_HMAC_KEY', value: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${codeHmacKeySecretName})' }
        { name: 'SSPR_TOTP_ENCRYPTION_KEY', value: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${totpEncryptionKeySecretName})' }
        { name: 'SSPR_MAIL_SENDER', value: mailSender }
        { name: 'SSPR_SMS_PROVIDER', value: smsOn ? 'acs' : 'none' }
        { name: 'SSPR_SMS_ENDPOINT', value: smsOn ? 'https://${acs.properties.hostName}' : '' }
        { name: 'SSPR_SMS_SENDER_NUMBER', value: smsSenderNumber }
        { name: 'SSPR_PUBLIC_BASE_URL', value: pagesOrigin }
        { name: 'SSPR_CORS_ALLOWED_ORIGINS', value: pagesOrigin }
      ]
    }
  }
}

// No FTP and no basic-auth publishing: deployments sign in with Entra.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

// ---- what the app's managed identity may do ---------------------------------------------------------------------

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, site.id, roleStorageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageBlobDataOwner)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, site.id, roleStorageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageQueueDataContributor)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, site.id, roleStorageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageTableDataContributor)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, site.id, roleKeyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultSecretsUser)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, site.id, roleMonitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleMonitoringMetricsPublisher)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// ACS authorises Entra callers with Contributor on the Communication Services resource (this one only).
resource smsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (deployAcs) {
  name: guid(resourceGroup().id, site.id, roleContributor, 'acs')
  scope: acs
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleContributor)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, deployerPrincipalId, roleKeyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// ---- for the next steps of docs/deploy.md ------------------------------------------------------------------------

output functionAppName string = site.name
output functionAppHostName string = site.properties.defaultHostName
output publicBaseUrl string = pagesOrigin
@description('Object id of the managed identity: --principal-id of scripts/grant_permissions.py.')
output principalId string = site.identity.principalId
output keyVaultName string = vault.name
output storageAccountName string = storage.name
output applicationInsightsName string = insights.name
output acsName string = deployAcs ? acs.name : ''
