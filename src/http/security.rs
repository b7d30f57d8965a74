//! The security headers, rendered once into the block the runtime appends to
//! every response (errors, 404s, health and metrics included).
//! See docs/http-api.md, Security headers.

/// `Name: value\r\n` lines for the configured CSP.
pub fn header_block(csp: &str) -> Vec<u8> {
    format!(
        "X-Frame-Options: DENY\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\n\
         Permissions-Policy: camera=(), microphone=(), geolocation=()\r\n\
         Content-Security-Policy: {csp}\r\n"
    )
    .into_bytes()
}
