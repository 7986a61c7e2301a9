//! Sending the wheels and JARs that `libraries` names on the agent to their volume folder
//! before the submit, and removing them once the run is over (or never started): a step
//! leaves nothing of its own behind in the volume.

use super::libraries::{Libraries, MAX_UPLOAD_BYTES};
use super::watch::{budget, within};
use crate::databricks::Client;
use crate::host::or_cancelled;
use crate::pipeline::Log;
use crate::tasks::names::input;
use crate::tasks::{Failure, FailureKind};
use crate::text::shorten;

/// Uploads every file; on a failure, removes those already sent and says what failed.
pub async fn upload(client: &Client, log: &Log, libraries: &Libraries) -> Result<(), Failure> {
    let host = client.host();
    for (sent, upload) in libraries.uploads.iter().enumerate() {
        let bytes = host
            .read_bytes(&upload.local, MAX_UPLOAD_BYTES)
            .map_err(|e| {
                Failure::new(
                    FailureKind::Input,
                    format!(
                        "input `{}`: {} cannot be read: {e}",
                        input::LIBRARIES,
                        shorten(&upload.local, 300)
                    ),
                )
                .hint("large files: upload them to the volume in an earlier step and list their /Volumes/... path")
            });
        let result = match bytes {
            Ok(bytes) => {
                let size = bytes.len();
                match or_cancelled(host, client.upload_volume_file(&upload.target, bytes)).await {
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
                    None => Err(Failure::new(
                        FailureKind::Canceled,
                        "The pipeline was cancelled while the libraries were uploaded",
                    )),
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

/// Removes the uploaded files and their folder; what cannot be removed is a warning.
pub async fn remove_all(client: &Client, log: &Log, libraries: &Libraries) {
    remove(client, log, libraries, libraries.uploads.len()).await;
}

async fn remove(client: &Client, log: &Log, libraries: &Libraries, sent: usize) {
    let Some(folder) = &libraries.upload_folder else {
        return;
    };
    if sent == 0 {
        return;
    }
    let host = client.host();
    // After a cancel or the step's time limit the removal still gets its own few seconds.
    client.set_deadline(None);
    let until = budget(host);
    let removal = async {
        for upload in &libraries.uploads[..sent] {
            client.delete_volume_entry(&upload.target, false).await?;
        }
        client.delete_volume_entry(folder, true).await
    };
    match within(host, until, removal).await {
        Some(Ok(())) => log.debug(&format!("removed the uploaded libraries ({folder})")),
        Some(Err(e)) => log.warning(&format!(
            "could not remove the uploaded libraries from {folder}: {e}; remove the folder by hand"
        )),
        None => log.warning(&format!(
            "the uploaded libraries in {folder} were not removed in time; remove the folder by hand"
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
