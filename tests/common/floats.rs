//! Finding binary-float artefacts in API output (docs/bots.md, Money): shared by the
//! bot tests and the replayed trading scenarios, which scan every body they receive.

/// The first float artefact in `body`: a number whose decimals hold seven zeros or
/// nines followed by another digit (`0.009000000000000001`, `0.30000000000000004`,
/// `2.9999999999999996`), i.e. the regex `\d\.\d*(0000000|9999999)\d`.
pub fn float_artefact(body: &str) -> Option<String> {
    let b = body.as_bytes();
    (1..b.len()).find_map(|dot| {
        if b[dot] != b'.' || !b[dot - 1].is_ascii_digit() {
            return None;
        }
        let digits: String = body[dot + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let noisy = (0..digits.len().saturating_sub(7)).any(|k| {
            let run = &digits[k..k + 7];
            run == "0000000" || run == "9999999"
        });
        noisy.then(|| format!("{}.{digits}", &body[dot.saturating_sub(12)..dot]))
    })
}
