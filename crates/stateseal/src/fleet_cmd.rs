//! What the fleet commands (`audit`, `rekey s3://…`, `locks`, `verify`, `bootstrap`) share: the S3 connection (the
//! directory's `backend "s3"` block with its bucket and key ignored, `--backend-config`, AWS_*),
//! and rendering the library's progress events: a progress bar on a terminal, else one line per
//! finished state when asked (for logs).

use std::io::IsTerminal;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stateseal_fleet::{BucketUrl, Event, Fleet, UrlError};
use stateseal_store::backend_block::{self, Backend};
use stateseal_store::s3::{S3Builder, S3Store};

use crate::failure::{exit, Failure};
use crate::global::Context;

/// Connects to the bucket of `url` with the directory's S3 settings.
pub async fn connect(ctx: &Context, url: &str) -> Result<Fleet, Failure> {
    connect_with(ctx, url, &[]).await
}

/// [`connect`], with `extra` `--backend-config` settings over everything else (the SSE a
/// rekey writes with, the region of a bootstrap).
pub async fn connect_with(ctx: &Context, url: &str, extra: &[String]) -> Result<Fleet, Failure> {
    let BucketUrl { bucket, prefix } = url.parse().map_err(|e: UrlError| {
        Failure::new(
            exit::USAGE,
            e.to_string(),
            "name the bucket to scan, e.g. s3://my-states or s3://my-states/team-a/",
        )
    })?;
    let loaded = ctx.loaded()?;
    // The URL picks the bucket; the key is unused (every state is addressed by its own key).
    let mut overrides = ctx.backend_config().to_vec();
    overrides.push(format!("bucket={bucket}"));
    overrides.push("key=fleet".to_string());
    overrides.extend_from_slice(extra);
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let is_s3 = loaded
        .module
        .backend
        .as_ref()
        .is_some_and(|b| b.labels.first().map(String::as_str) == Some("s3"));
    let cfg = if is_s3 {
        match backend_block::configure(&loaded.module, &loaded.evaluator, &overrides, &env)? {
            Backend::S3(cfg) => *cfg,
            _ => {
                return Err(Failure::plain(
                    exit::CONFIG,
                    "the backend block is not an s3 backend",
                ))
            }
        }
    } else {
        let mut b = S3Builder::new();
        for o in &overrides {
            b = b.with_backend_config(o);
        }
        b.build_config(&env)?
    };
    let store = S3Store::connect(cfg)
        .await
        .map_err(stateseal_fleet::Error::from)?;
    Ok(Fleet::new(store, prefix))
}

impl From<stateseal_fleet::Error> for Failure {
    fn from(e: stateseal_fleet::Error) -> Failure {
        use stateseal_fleet::Error;
        if e.is_unavailable() {
            return Failure::new(
                exit::UNAVAILABLE,
                e.to_string(),
                "a key service or the state storage is unavailable; nothing was changed; try again",
            );
        }
        // The settings or the account, not a service that failed: the configuration's to fix.
        let settings = matches!(e, Error::Connect(_)) && e.service_kind().is_none();
        match e {
            Error::Store(e) => Failure::from(e),
            _ if settings => Failure::new(
                exit::CONFIG,
                e.to_string(),
                "correct the AWS settings (backend block, --backend-config or AWS_* environment)",
            ),
            other => Failure::plain(exit::FAILURE, other.to_string()),
        }
    }
}

/// `--allow-empty`, shared by the gates (`verify`, `audit --require`).
#[derive(Args, Debug)]
pub struct EmptySelection {
    /// Pass when there is no state under the URL. Without it, a check that finds no state
    /// exits 8 and says so: a mistyped (or mis-cased) prefix must not pass a CI gate for ever.
    #[arg(long)]
    pub allow_empty: bool,
}

impl EmptySelection {
    /// The verdict on a selection that holds no state (`others`: objects that are not states).
    pub fn verdict(&self, bucket: &str, prefix: &str, others: usize) -> Result<(), Failure> {
        if self.allow_empty {
            return Ok(());
        }
        Err(Failure::new(
            exit::CHECK,
            stateseal_fleet::nothing_checked(bucket, prefix, others),
            "check the bucket and the prefix (keys are case-sensitive); if no state is expected there, pass --allow-empty",
        ))
    }
}

/// Renders progress events.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Without a terminal: print `KEY: OUTCOME` per finished state on stderr.
    log_lines: bool,
    verb: &'static str,
}

impl Progress {
    pub fn new(verb: &'static str, log_lines: bool) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({per_sec})")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            b
        });
        Progress {
            bar,
            log_lines,
            verb,
        }
    }

    pub fn on_event(&mut self, e: Event) {
        match (e, &self.bar) {
            (Event::Listed { objects }, Some(b)) => {
                b.set_message("reading");
                b.set_length(objects as u64);
                b.set_position(0);
            }
            (Event::Read { .. }, Some(b)) => b.inc(1),
            (Event::Started { states }, Some(b)) => {
                b.set_message(self.verb);
                b.set_length(states as u64);
                b.set_position(0);
            }
            (Event::Finished { .. }, Some(b)) => b.inc(1),
            (Event::Finished { key, outcome }, None) if self.log_lines => {
                errln!("{key}: {outcome}")
            }
            _ => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Prints a report on stdout: as JSON, or rendered by `render`.
pub fn show<R: serde::Serialize>(report: &R, json: bool, render: impl Fn(&R) -> String) {
    if json {
        print_json(report);
    } else {
        out!("{}", render(report));
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).expect("reports serialize")
    );
}

/// Left-aligned columns, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
