//! The SMTP envelope: who the server sees as sender and recipients.

use crate::address::Address;
use crate::error::Error;

/// A checked envelope: an optional reverse path (none is the null path
/// `<>` of bounces) and at least one forward path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    reverse_path: Option<Address>,
    forward_paths: Vec<Address>,
}

impl Envelope {
    /// Checks the paths. An empty `reverse_path` is the null path.
    /// Duplicate forward paths are kept once, in first-seen order.
    pub fn new(reverse_path: &str, forward_paths: &[String]) -> Result<Envelope, Error> {
        let reverse_path = match reverse_path {
            "" => None,
            rp => Some(Address::parse(rp).map_err(|e| Error::invalid("envelope.reverse-path", e))?),
        };
        let mut checked: Vec<Address> = Vec::with_capacity(forward_paths.len());
        for (i, fp) in forward_paths.iter().enumerate() {
            let address = Address::parse(fp)
                .map_err(|e| Error::invalid(format!("envelope.forward-paths[{i}]"), e))?;
            if !checked.contains(&address) {
                checked.push(address);
            }
        }
        Envelope::from_addresses(reverse_path, checked)
    }

    /// An envelope from already checked addresses.
    pub fn from_addresses(
        reverse_path: Option<Address>,
        forward_paths: Vec<Address>,
    ) -> Result<Envelope, Error> {
        if forward_paths.is_empty() {
            return Err(Error::invalid(
                "envelope.forward-paths",
                "there is no recipient (to, cc or bcc)",
            ));
        }
        Ok(Envelope {
            reverse_path,
            forward_paths,
        })
    }

    /// The reverse path; none for `<>`.
    pub fn reverse_path(&self) -> Option<&Address> {
        self.reverse_path.as_ref()
    }

    /// The forward paths, at least one.
    pub fn forward_paths(&self) -> &[Address] {
        &self.forward_paths
    }

    /// True when a path holds non-ASCII characters (SMTPUTF8 needed).
    pub fn needs_smtputf8(&self) -> bool {
        self.reverse_path.iter().any(Address::needs_smtputf8)
            || self.forward_paths.iter().any(Address::needs_smtputf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_dedupes() {
        let env =
            Envelope::new("a@x.example", &["b@x.example".into(), "b@x.example".into()]).unwrap();
        assert_eq!(env.forward_paths().len(), 1);
        assert!(Envelope::new("", &["b@x.example".into()])
            .unwrap()
            .reverse_path()
            .is_none());
        assert!(matches!(
            Envelope::new("a@x.example", &[]),
            Err(Error::InvalidInput { .. })
        ));
        let err =
            Envelope::new("a@x.example", &["ok@x.example".into(), "bad\r\n@x".into()]).unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { ref field, .. } if field == "envelope.forward-paths[1]")
        );
    }
}
