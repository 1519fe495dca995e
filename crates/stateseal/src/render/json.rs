//! Reports on stdout: as pretty JSON (`--json`, whose shapes are pinned by snapshot tests), or
//! as the text a command renders.

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
