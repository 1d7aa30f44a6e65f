//! `smtp-mailer doctor`: the deliverability checks of
//! `smtp-mailer-doctor`, rendered for people or as JSON, with exit code 0
//! when nothing failed and 1 when a check failed or could not be made.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use smtp_mailer_doctor::{diagnose, DoctorError, Finding, Report, Settings, Status};

use crate::args::{DoctorArgs, Output};
use crate::url::server_from_args;
use crate::{invalid, mailer};

/// Nothing failed (warnings do not fail).
const EXIT_HEALTHY: u8 = 0;
/// A check failed, or could not be made.
const EXIT_FINDINGS: u8 = 1;

/// `smtp-mailer doctor`: the exit code.
pub fn doctor(args: DoctorArgs) -> u8 {
    let settings = match settings(&args) {
        Ok(settings) => settings,
        Err(e) => return invalid(e),
    };
    let mailer = match mailer(None, None) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let report = match diagnose(&mailer, &settings) {
        Ok(report) => report,
        Err(e @ DoctorError::Input { .. }) => return invalid(e),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FINDINGS;
        }
    };
    match args.output {
        Output::Json => println!("{}", as_json(&report)),
        Output::Human => print!("{}", for_people(&report, &settings)),
    }
    if report.failed() {
        EXIT_FINDINGS
    } else {
        EXIT_HEALTHY
    }
}

/// The library's settings from the options, files read.
fn settings(args: &DoctorArgs) -> Result<Settings, String> {
    let mut settings = Settings::new(args.domain.clone());
    settings.from = args.from.clone();
    settings.dkim_selector = args.dkim_selector.clone();
    if let Some(path) = &args.dkim_key {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("--dkim-key {}: {e}", path.display()))?;
        settings.dkim_key = Some((pem, path.display().to_string()));
    }
    settings.dkim_testing_expected = args.dkim_testing_expected;
    settings.sending_ip = args.sending_ip;
    settings.bounce_domain = args.bounce_domain.clone();
    settings.inbound_host = args.inbound_host.clone();
    settings.dns_server = match &args.dns_server {
        Some(text) => Some(dns_server(text)?),
        None => None,
    };
    settings.dns_timeout = Duration::from_secs(args.dns_timeout);
    if let Some(url) = &args.server {
        settings.relay = Some(server_from_args(url, &args.connection, false)?);
    }
    if let Some(path) = &args.message {
        let json = std::fs::read_to_string(path)
            .map_err(|e| format!("--message {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        settings.message = Some(
            smtp_mailer_delivery::json::parse_message(&json, base)
                .map_err(|e| format!("--message {}: {e}", path.display()))?,
        );
    }
    Ok(settings)
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 when none.
fn dns_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("--dns-server: {text:?} is not IP or IP:PORT"))
}

/// One JSON object: `ok` and one entry per check, fields in the order
/// they are declared.
fn as_json(report: &Report) -> String {
    #[derive(serde::Serialize)]
    struct Json<'a> {
        ok: bool,
        checks: &'a [Finding],
    }
    serde_json::to_string(&Json {
        ok: !report.failed(),
        checks: &report.findings,
    })
    .unwrap_or_else(|e| format!("{{\"error\": \"cannot write the report: {e}\"}}"))
}

/// The report for people: each finding with its reason, details and fix,
/// then the counts.
fn for_people(report: &Report, settings: &Settings) -> String {
    let mut out = format!("smtp-mailer doctor: {}", settings.domain);
    let mut context = Vec::new();
    if let Some(from) = &settings.from {
        context.push(format!("From {from}"));
    }
    if let Some(ip) = settings.sending_ip {
        context.push(format!("sending IP {ip}"));
    }
    if let Some(dns) = settings.dns_server {
        context.push(format!("DNS {dns}"));
    }
    if !context.is_empty() {
        out.push_str(&format!(" ({})", context.join(", ")));
    }
    out.push_str("\n\n");
    for finding in &report.findings {
        out.push_str(&render(finding));
    }
    let count = |status: Status| {
        report
            .findings
            .iter()
            .filter(|f| f.status == status)
            .count()
    };
    out.push_str(&format!(
        "{} ok, {} warn, {} fail, {} unchecked\n",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Unchecked)
    ));
    out
}

fn render(finding: &Finding) -> String {
    let label = match finding.status {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "FAIL",
        Status::Unchecked => "UNCHECKED",
    };
    let mut out = format!(
        "{label:<9} {:<11} {}\n          {}\n",
        finding.check.name(),
        finding.subject,
        finding.reason
    );
    for line in &finding.details {
        out.push_str(&format!("          - {line}\n"));
    }
    if let Some(fix) = &finding.fix {
        out.push_str(&format!("          fix: {}\n", fix.advice));
        for record in &fix.records {
            out.push_str(&format!("            {}\n", record.zone_line()));
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_server_forms() {
        assert_eq!(
            dns_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(dns_server("192.0.2.1").unwrap().port(), 53);
        assert_eq!(dns_server("::1").unwrap().port(), 53);
        assert!(dns_server("ns.example").is_err());
    }
}
