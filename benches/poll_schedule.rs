//! The poll schedule against the Databricks SDK's waiter, on paper: for runs whose lengths
//! spread evenly over a window, how long after its end a run is seen (mean), and how many
//! `runs/get` requests that took (mean). `cargo bench --bench poll_schedule`.

use databricks_azdo::tasks::run_notebook_test::poll::{poll_times, polls_to_see, sdk_poll_times};

/// Enough for half an hour.
const POLLS: usize = 400;

fn main() {
    let ours = poll_times(POLLS);
    let sdk = sdk_poll_times(POLLS);
    println!("| runs of | seen after (ours / SDK) | polls (ours / SDK) |");
    println!("|---|---|---|");
    for (from, to) in [(1, 5), (5, 15), (15, 45), (45, 90), (90, 300), (300, 1800)] {
        let lengths: Vec<f64> = (from * 10..to * 10).map(|t| f64::from(t) / 10.0).collect();
        let mean = |times: &[f64]| {
            let (mut polls, mut latency) = (0.0, 0.0);
            for &end in &lengths {
                let (made, seen) = polls_to_see(times, end).expect("enough polls for half an hour");
                polls += made as f64;
                latency += seen - end;
            }
            let n = lengths.len() as f64;
            (latency / n, polls / n)
        };
        let ((our_latency, our_polls), (sdk_latency, sdk_polls)) = (mean(&ours), mean(&sdk));
        println!(
            "| {from}–{to} s | {our_latency:.1} s / {sdk_latency:.1} s | {our_polls:.1} / {sdk_polls:.1} |"
        );
    }
}
