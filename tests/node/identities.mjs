// The parties a pipeline signs in through, as the emulator plays them for the Node tests: one
// Azure DevOps organization with its service connections, a Microsoft Entra application, a
// managed identity and the workspace's principals, and the environment the agent gives a step
// for each sign-in method.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { ROOT } from './harness.mjs';

export const ORG = 'contoso';
export const ORG_ID = '0d6b3e2a-8a51-4c0e-9d7f-5e4b0c1a2f30';
export const PROJECT = 'income-model';
export const PROJECT_ID = '7a1f9c44-2b3d-4e5f-8a6b-9c0d1e2f3a4b';
export const PIPELINE = 'income-model-ci';
export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const AZURE_CLIENT = '9b0c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4';
export const AZURE_CONNECTION = '5e8a1b9c-2d3f-4a5b-9c6d-7e8f9a0b1c2d';
export const AZURE_CONNECTION_NAME = 'databricks-ci';
export const UNAUTHORIZED_CONNECTION = '0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b';
export const DATABRICKS_CONNECTION = 'c4d5e6f7-0819-4a2b-8c3d-4e5f60718293';
export const MSI_CLIENT = 'e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7';
export const DATABRICKS_CLIENT = '1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b';
export const ISSUER = `https://vstoken.dev.azure.com/${ORG_ID}`;
export const CERTIFICATE = readFileSync(path.join(ROOT, 'src/emulator/identity/test-certificate.pem'), 'utf8');
export const KEY_LINES = CERTIFICATE.split('-----BEGIN PRIVATE KEY-----')[1].split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'));

const word = (prefix) => `${prefix}-${randomBytes(16).toString('hex')}`;
export const secrets = { job: word('job'), client: word('spn~secret'), header: word('idh') };

/** Every party the emulator plays, each identity trusted and a user of the workspace. */
export function identities({ tokenLifetimeSeconds = 3600 } = {}) {
  return {
    tokenLifetimeSeconds,
    devops: {
      organization: ORG, organizationId: ORG_ID, project: PROJECT, projectId: PROJECT_ID, pipeline: PIPELINE,
      jobAccessToken: secrets.job,
      serviceConnections: [
        { id: AZURE_CONNECTION, name: AZURE_CONNECTION_NAME, authorized: true },
        { id: UNAUTHORIZED_CONNECTION, name: 'not-for-this-pipeline', authorized: false },
        { id: DATABRICKS_CONNECTION, name: 'databricks-workspace', authorized: true },
      ],
    },
    entra: {
      applications: [{
        tenantId: TENANT, clientId: AZURE_CLIENT, clientSecret: secrets.client, certificatePem: CERTIFICATE,
        federatedCredentials: [
          { issuer: ISSUER, subject: `sc://${ORG}/${PROJECT}/${AZURE_CONNECTION_NAME}`, audience: 'api://AzureADTokenExchange' },
          { issuer: ISSUER, subject: `sc://${ORG}/${PROJECT}/not-for-this-pipeline`, audience: 'api://AzureADTokenExchange' },
        ],
      }],
    },
    managedIdentity: { clientId: MSI_CLIENT, identityHeader: secrets.header },
    workspace: {
      principals: [AZURE_CLIENT, MSI_CLIENT],
      oauthClients: [{ clientId: DATABRICKS_CLIENT, clientSecret: secrets.client }],
      federationPolicies: [
        { clientId: DATABRICKS_CLIENT, issuer: ISSUER, audience: 'api://AzureADTokenExchange', subject: `p://${ORG}/${PROJECT}/${PIPELINE}` },
        { clientId: DATABRICKS_CLIENT, issuer: ISSUER, audience: 'api://AzureADTokenExchange', subject: `sc://${ORG}/${PROJECT}/databricks-workspace` },
      ],
    },
  };
}

/** A service connection as the agent hands it to a step. */
export function connection(id, url, scheme, parameters, data = {}) {
  const env = {
    [`ENDPOINT_URL_${id}`]: url,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ parameters, scheme }),
    [`ENDPOINT_AUTH_SCHEME_${id}`]: scheme,
    [`ENDPOINT_DATA_${id}`]: JSON.stringify(data),
  };
  for (const [key, value] of Object.entries(parameters)) env[`ENDPOINT_AUTH_PARAMETER_${id}_${key.toUpperCase()}`] = value;
  for (const [key, value] of Object.entries(data)) env[`ENDPOINT_DATA_${id}_${key.toUpperCase()}`] = value;
  return env;
}

/** What the agent gives a step signing in with `method` (the job's ids, its access token, the connection). */
export function agentEnv(method, url) {
  const collection = `${url}/${ORG}/`;
  const env = {
    SYSTEM_COLLECTIONURI: collection, SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: collection,
    SYSTEM_TEAMPROJECTID: PROJECT_ID, SYSTEM_HOSTTYPE: 'build', SYSTEM_PLANID: '3f2e1d0c-9b8a-4756-8493-a2b1c0d9e8f7',
    SYSTEM_JOBID: '12f1170f-54f2-53f3-20dd-22fc7dff55f9',
    ...connection('SYSTEMVSSCONNECTION', collection, 'OAuth', { AccessToken: secrets.job }),
    INPUT_DATABRICKSTOKEN: '$(DATABRICKS_TOKEN)',
  };
  env.SYSTEM_OIDCREQUESTURI = `${collection}${PROJECT_ID}/_apis/distributedtask/hubs/build/plans/${env.SYSTEM_PLANID}/jobs/${env.SYSTEM_JOBID}/oidctoken`;
  const arm = (scheme, parameters) => ({
    INPUT_AUTHMETHOD: 'azureServiceConnection', INPUT_AZURESUBSCRIPTION: AZURE_CONNECTION,
    ...connection(AZURE_CONNECTION, 'https://management.azure.com/', scheme, { tenantid: TENANT, ...parameters },
      { environment: 'AzureCloud', scopeLevel: 'Subscription', activeDirectoryAuthority: `${url}/` }),
  });
  const methods = {
    federation: () => arm('WorkloadIdentityFederation', { serviceprincipalid: AZURE_CLIENT }),
    secret: () => arm('ServicePrincipal', { serviceprincipalid: AZURE_CLIENT, authenticationType: 'spnKey', serviceprincipalkey: secrets.client }),
    certificate: () => arm('ServicePrincipal', { serviceprincipalid: AZURE_CLIENT, authenticationType: 'spnCertificate', servicePrincipalCertificate: CERTIFICATE }),
    managedIdentity: () => ({ ...arm('ManagedServiceIdentity', {}), IDENTITY_ENDPOINT: `${url}/msi/token`, IDENTITY_HEADER: secrets.header }),
    databricksM2m: () => ({
      INPUT_AUTHMETHOD: 'databricksServiceConnection', INPUT_DATABRICKSCONNECTION: DATABRICKS_CONNECTION,
      ...connection(DATABRICKS_CONNECTION, url, 'UsernamePassword', { username: DATABRICKS_CLIENT, password: secrets.client }),
    }),
    databricksConnectionFederation: () => ({
      INPUT_AUTHMETHOD: 'databricksServiceConnection', INPUT_DATABRICKSCONNECTION: DATABRICKS_CONNECTION,
      ...connection(DATABRICKS_CONNECTION, url, 'None', { clientId: DATABRICKS_CLIENT }),
    }),
    databricksFederation: () => ({ INPUT_AUTHMETHOD: 'databricksFederation', INPUT_CLIENTID: DATABRICKS_CLIENT }),
  };
  return { ...env, ...methods[method]() };
}
