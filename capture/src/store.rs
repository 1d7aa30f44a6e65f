//! Keeping messages on disk: `<id>.eml` (raw content) and `<id>.json`
//! (envelope), each written to a temporary file and renamed into place, the
//! `.json` last so its presence means the message is complete.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::CapturedMessage;

/// The `<id>.json` file.
#[derive(Serialize)]
struct EnvelopeFile<'a> {
    id: u64,
    mail_from: &'a str,
    rcpt_to: &'a [String],
    /// RFC 3339, UTC, millisecond precision.
    received_at: String,
    connection: u64,
    size: usize,
    eml: String,
}

/// Writes `message` into `dir`.
pub(crate) fn write(dir: &Path, message: &CapturedMessage) -> io::Result<()> {
    let eml = format!("{}.eml", message.id);
    write_atomic(dir, &eml, &message.data)?;
    let envelope = EnvelopeFile {
        id: message.id,
        mail_from: &message.mail_from,
        rcpt_to: &message.rcpt_to,
        received_at: rfc3339(message.received_at),
        connection: message.connection,
        size: message.data.len(),
        eml,
    };
    let mut json = serde_json::to_vec_pretty(&envelope).map_err(io::Error::other)?;
    json.push(b'\n');
    write_atomic(dir, &format!("{}.json", message.id), &json)
}

/// The highest `<id>` of an `<id>.eml` in `dir`, or 0: numbering continues
/// after it so earlier captures are never overwritten.
pub(crate) fn highest_id(dir: &Path) -> io::Result<u64> {
    let mut highest = 0;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let id = name
            .to_str()
            .and_then(|name| name.strip_suffix(".eml"))
            .and_then(|stem| stem.parse::<u64>().ok());
        highest = highest.max(id.unwrap_or(0));
    }
    Ok(highest)
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!(".{name}.tmp"));
    let result = fs::File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match result.and_then(|()| fs::rename(&temp, dir.join(name))) {
        Ok(()) => Ok(()),
        Err(err) => {
            let _ = fs::remove_file(&temp);
            Err(err)
        }
    }
}

/// Formats `time` as `YYYY-MM-DDThh:mm:ss.sssZ` (UTC).
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_millis(951_782_400_123);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.123Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_767_225_599);
        assert_eq!(rfc3339(later), "2025-12-31T23:59:59.000Z");
    }

    #[test]
    fn writes_both_files_and_finds_the_highest_id() {
        let dir = std::env::temp_dir().join(format!("capture-store-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let message = CapturedMessage {
            id: 7,
            mail_from: "a@x".into(),
            rcpt_to: vec!["b@y".into()],
            data: b"Subject: s\r\n\r\nhi\r\n".to_vec(),
            received_at: UNIX_EPOCH,
            connection: 3,
        };
        write(&dir, &message).expect("write");
        assert_eq!(fs::read(dir.join("7.eml")).expect("eml"), message.data);
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("7.json")).expect("json")).expect("parse");
        assert_eq!(json["rcpt_to"][0], "b@y");
        assert_eq!(json["received_at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["size"], 18);
        fs::write(dir.join("notes.eml"), b"").expect("write");
        assert_eq!(highest_id(&dir).expect("scan"), 7);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
