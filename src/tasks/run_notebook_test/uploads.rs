//! Sending the wheels and JARs that `libraries` names on the agent to this step's folder (in a
//! volume with the Files API, or in the workspace with the import API) before the submit, and
//! removing them once the run is over (or never started): a step leaves nothing of its own
//! behind.

use super::libraries::{Libraries, Upload, UploadFolder};
use super::watch::{budget, within};
use crate::databricks::{ApiError, Client};
use crate::host::or_cancelled;
use crate::pipeline::Log;
use crate::tasks::names::input;
use crate::tasks::{Failure, FailureKind};
use crate::text::shorten;

/// The workspace API's name for `/Workspace/<path>`.
fn workspace_path(path: &str) -> &str {
    path.strip_prefix("/Workspace").unwrap_or(path)
}

/// Uploads every file; on a failure, removes those already sent and says what failed.
pub async fn upload(client: &Client, log: &Log, libraries: &Libraries) -> Result<(), Failure> {
    let Some(folder) = &libraries.upload_folder else {
        return Ok(());
    };
    let host = client.host();
    if let UploadFolder::Workspace(path) = folder {
        // The import API writes into an existing folder only.
        match or_cancelled(host, client.mkdirs(workspace_path(path))).await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Failure::api(&format!("creating the folder {path}"), e)),
            None => return Err(cancelled()),
        }
    }
    for (sent, upload) in libraries.uploads.iter().enumerate() {
        let result = match read(host, folder, upload) {
            Ok(bytes) => {
                let size = bytes.len();
                match or_cancelled(host, send(client, folder, upload, bytes)).await {
                    Some(Ok(())) => {
                        log.info(&format!(
                            "Uploaded {} ({}) to {}",
                            upload.local,
                            human_size(size),
                            upload.target
                        ));
                        continue;
                    }
                    Some(Err(e)) => Err(Failure::api(
                        &format!("uploading {} to {}", upload.local, upload.target),
                        e,
                    )),
                    None => Err(cancelled()),
                }
            }
            Err(failure) => Err(failure),
        };
        // This one may have arrived even though its answer did not: removed with the rest.
        remove(client, log, libraries, sent + 1).await;
        return result;
    }
    Ok(())
}

fn cancelled() -> Failure {
    Failure::new(
        FailureKind::Canceled,
        "The pipeline was cancelled while the libraries were uploaded",
    )
}

/// The file's bytes, within what its destination takes.
fn read(
    host: &dyn crate::host::Host,
    folder: &UploadFolder,
    upload: &Upload,
) -> Result<Vec<u8>, Failure> {
    let hint = match folder {
        UploadFolder::Volume(_) => "a larger file: upload it to the volume in an earlier step and list its /Volumes/... path",
        UploadFolder::Workspace(_) => "the workspace import API takes files up to 10 MB: set libraryUploadPath to a folder in a Unity Catalog volume",
    };
    host.read_bytes(&upload.local, folder.max_bytes())
        .map_err(|e| {
            Failure::new(
                FailureKind::Input,
                format!(
                    "input `{}`: {} cannot be uploaded: {e}",
                    input::LIBRARIES,
                    shorten(&upload.local, 300)
                ),
            )
            .hint(hint)
        })
}

async fn send(
    client: &Client,
    folder: &UploadFolder,
    upload: &Upload,
    bytes: Vec<u8>,
) -> Result<(), ApiError> {
    match folder {
        UploadFolder::Volume(_) => client.upload_volume_file(&upload.target, bytes).await,
        UploadFolder::Workspace(_) => {
            client
                .import_workspace_file(workspace_path(&upload.target), &bytes)
                .await
        }
    }
}

/// Removes the uploaded files and their folder; what cannot be removed is a warning.
pub async fn remove_all(client: &Client, log: &Log, libraries: &Libraries) {
    remove(client, log, libraries, libraries.uploads.len()).await;
}

async fn remove(client: &Client, log: &Log, libraries: &Libraries, sent: usize) {
    let Some(folder) = &libraries.upload_folder else {
        return;
    };
    let host = client.host();
    // After a cancel or the step's time limit the removal still gets its own few seconds.
    client.set_deadline(None);
    let until = budget(host);
    let removal = async {
        match folder {
            UploadFolder::Volume(path) => {
                for upload in &libraries.uploads[..sent] {
                    client.delete_volume_entry(&upload.target, false).await?;
                }
                client.delete_volume_entry(path, true).await
            }
            // The folder was made for this step: it goes with what is in it.
            UploadFolder::Workspace(path) => {
                client.delete_workspace_folder(workspace_path(path)).await
            }
        }
    };
    let path = folder.path();
    match within(host, until, removal).await {
        Some(Ok(())) => log.debug(&format!("removed the uploaded libraries ({path})")),
        Some(Err(e)) => log.warning(&format!(
            "could not remove the uploaded libraries from {path}: {e}; remove the folder by hand"
        )),
        None => log.warning(&format!(
            "the uploaded libraries in {path} were not removed in time; remove the folder by hand"
        )),
    }
}

fn human_size(bytes: usize) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}
