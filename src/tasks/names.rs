//! Every name the tasks share with the agent, in one place: the task inputs (as `task.json`
//! declares them), the output variables, and the agent's variables the code reads. Each is
//! used where it is read or set and in the task's `INPUTS`/`OUTPUTS` lists, which the manifest
//! test compares with `task.json`.

/// Task inputs (`INPUT_<NAME>` in the step's environment).
pub mod input {
    pub const DATABRICKS_HOST: &str = "databricksHost";
    pub const DATABRICKS_TOKEN: &str = "databricksToken";
    // Signing in (both tasks)
    pub const AUTH_METHOD: &str = "authMethod";
    pub const AZURE_SUBSCRIPTION: &str = "azureSubscription";
    pub const DATABRICKS_CONNECTION: &str = "databricksConnection";
    pub const CLIENT_ID: &str = "clientId";
    pub const WORKSPACE_RESOURCE_ID: &str = "workspaceResourceId";
    pub const REPO_PATH: &str = "repoPath";
    pub const REPO_URL: &str = "repoUrl";
    pub const GIT_PROVIDER: &str = "gitProvider";
    // DatabricksRepoUpdate
    pub const MODE: &str = "mode";
    pub const REPO_ID: &str = "repoId";
    pub const BRANCH: &str = "branch";
    pub const TAG: &str = "tag";
    pub const EXPECTED_COMMIT: &str = "expectedCommit";
    pub const ON_COMMIT_MISMATCH: &str = "onCommitMismatch";
    pub const SPARSE_CHECKOUT: &str = "sparseCheckout";
    // DatabricksRunNotebookTest
    pub const NOTEBOOK_PATHS: &str = "notebookPaths";
    pub const SOURCE: &str = "source";
    pub const CLUSTER_MODE: &str = "clusterMode";
    pub const EXISTING_CLUSTER_ID: &str = "existingClusterId";
    pub const NEW_CLUSTER_JSON: &str = "newClusterJson";
    pub const PARAMETERS: &str = "parameters";
    pub const TIMEOUT_MINUTES: &str = "timeoutMinutes";
    pub const RUN_NAME: &str = "runName";
    pub const FAIL_ON_FAILED_TESTS: &str = "failOnFailedTests";
    pub const RETRIES: &str = "retries";
    pub const RETRY_INTERVAL_SECONDS: &str = "retryIntervalSeconds";
    pub const MAX_PARALLEL: &str = "maxParallel";
    pub const LIBRARIES: &str = "libraries";
    pub const LIBRARY_UPLOAD_PATH: &str = "libraryUploadPath";
    pub const ENVIRONMENT_VERSION: &str = "environmentVersion";
    pub const CLUSTER_POLICY_ID: &str = "clusterPolicyId";
    pub const RUN_AS: &str = "runAs";
    pub const PERFORMANCE_TARGET: &str = "performanceTarget";
    pub const BUDGET_POLICY_ID: &str = "budgetPolicyId";
}

/// Output variables (`##vso[task.setvariable ...;isOutput=true]`).
pub mod output {
    // DatabricksRepoUpdate
    pub const REPO_ID: &str = "repoId";
    pub const REPO_PATH: &str = "repoPath";
    pub const BRANCH: &str = "branch";
    pub const HEAD_COMMIT_ID: &str = "headCommitId";
    // DatabricksRunNotebookTest
    pub const RUN_ID: &str = "runId";
    pub const RUN_PAGE_URL: &str = "runPageUrl";
    pub const RESULT_STATE: &str = "resultState";
    pub const NOTEBOOK_OUTPUT: &str = "notebookOutput";
    pub const TESTS_PASSED: &str = "testsPassed";
    pub const TESTS_FAILED: &str = "testsFailed";
    pub const TESTS_SKIPPED: &str = "testsSkipped";
}

/// Pipeline and agent variables (public ones as `SYSTEM_DEBUG`, secrets as `SECRET_...`).
pub mod variable {
    /// The variable-group fallbacks for the workspace and the token.
    pub const DATABRICKS_HOST: &str = "DATABRICKS_HOST";
    pub const DATABRICKS_TOKEN: &str = "DATABRICKS_TOKEN";
    pub const SYSTEM_DEBUG: &str = "System.Debug";
    /// Set by Azure Pipelines in every job.
    pub const TF_BUILD: &str = "TF_BUILD";
    pub const BUILD_REASON: &str = "Build.Reason";
    pub const BUILD_REPOSITORY_URI: &str = "Build.Repository.Uri";
    pub const BUILD_SOURCE_BRANCH: &str = "Build.SourceBranch";
    pub const BUILD_SOURCE_VERSION: &str = "Build.SourceVersion";
    /// The agent's checkout of the commit being built (where `source: git` globs match).
    pub const BUILD_SOURCES_DIRECTORY: &str = "Build.SourcesDirectory";
    pub const BUILD_DEFINITION_NAME: &str = "Build.DefinitionName";
    pub const BUILD_NUMBER: &str = "Build.BuildNumber";
    pub const PULL_REQUEST_SOURCE_BRANCH: &str = "System.PullRequest.SourceBranch";
    pub const PULL_REQUEST_SOURCE_COMMIT_ID: &str = "System.PullRequest.SourceCommitId";
    pub const DEFAULT_WORKING_DIRECTORY: &str = "System.DefaultWorkingDirectory";
    pub const AGENT_TEMP_DIRECTORY: &str = "Agent.TempDirectory";
    pub const PROXY_URL: &str = "Agent.ProxyUrl";
    pub const PROXY_USERNAME: &str = "Agent.ProxyUsername";
    pub const PROXY_PASSWORD: &str = "Agent.ProxyPassword";
    pub const PROXY_BYPASS_LIST: &str = "Agent.ProxyBypassList";
    /// What workload identity federation needs to ask Azure DevOps for the job's id token.
    pub const OIDC_REQUEST_URI: &str = "System.OidcRequestUri";
    pub const COLLECTION_URI: &str = "System.CollectionUri";
    pub const TEAM_FOUNDATION_COLLECTION_URI: &str = "System.TeamFoundationCollectionUri";
    pub const TEAM_PROJECT_ID: &str = "System.TeamProjectId";
    pub const HOST_TYPE: &str = "System.HostType";
    pub const PLAN_ID: &str = "System.PlanId";
    pub const JOB_ID: &str = "System.JobId";
    /// The job's access token as a script step maps it (`SYSTEM_ACCESSTOKEN: $(System.AccessToken)`);
    /// tasks get it as the `SystemVssConnection` endpoint.
    pub const ACCESS_TOKEN: &str = "System.AccessToken";
    /// The Azure Identity SDKs' managed identity overrides.
    pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
    pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
    pub const POD_IDENTITY_AUTHORITY_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
}
