//! Twilio's default opt-out handling: a whole-message keyword (case-insensitive, surrounding
//! whitespace ignored) from the patient blocks or unblocks the sender → patient pair, and Twilio
//! answers with its standard texts. ARO must cope with it: a patient texting "CANCEL" to cancel
//! a visit is, for Twilio, an opt-out.

/// What a keyword does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    OptOut,
    OptIn,
    Help,
}

const OPT_OUT: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];
const OPT_IN: [&str; 3] = ["START", "UNSTOP", "YES"];
const HELP: [&str; 2] = ["HELP", "INFO"];

/// Twilio's standard answer to an opt-out keyword.
pub(crate) const OPT_OUT_REPLY: &str = "You have successfully been unsubscribed. You will not receive any more messages from this number. Reply START to resubscribe.";
/// Twilio's standard answer to an opt-in keyword.
pub(crate) const OPT_IN_REPLY: &str = "You have successfully been re-subscribed to messages from this number. Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.";
/// Twilio's standard answer to a help keyword.
pub(crate) const HELP_REPLY: &str = "Reply STOP to unsubscribe. Msg&Data Rates May Apply.";

/// The keyword `body` is, if it is one.
pub(crate) fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim();
    let is = |list: &[&str]| list.iter().any(|k| k.eq_ignore_ascii_case(word));
    if is(&OPT_OUT) {
        Some(Keyword::OptOut)
    } else if is(&OPT_IN) {
        Some(Keyword::OptIn)
    } else if is(&HELP) {
        Some(Keyword::Help)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_message_keyword_counts() {
        for stop in [
            "STOP",
            "stop",
            "  Stop \n",
            "cancel",
            "Unsubscribe",
            "optout",
            "REVOKE",
        ] {
            assert_eq!(keyword(stop), Some(Keyword::OptOut), "{stop:?}");
        }
        for start in ["START", "unstop", "Yes"] {
            assert_eq!(keyword(start), Some(Keyword::OptIn), "{start:?}");
        }
        assert_eq!(keyword("help"), Some(Keyword::Help));
        for other in ["please stop", "STOP!", "C", "", "yes please", "stopp"] {
            assert_eq!(keyword(other), None, "{other:?}");
        }
    }
}
