//! The fleet library's progress events, rendered: a progress bar on a terminal, else (when
//! asked, for logs) one `KEY: OUTCOME` line per finished state on stderr.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stateseal_fleet::Event;

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
