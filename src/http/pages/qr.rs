//! QR codes as inline SVG, drawn by the server: no script, no image request, so
//! the self-only CSP holds and the code never leaves the page.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// An `<svg>` element showing `text` as a QR code, labelled for screen readers;
/// `None` if the text is too long for a QR code.
pub fn svg(text: &str, label: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    // An element inside HTML, not a standalone document: no XML declaration.
    let element = image.find("<svg").map(|i| &image[i..])?;
    let attrs = format!(
        "<svg class=\"qr\" role=\"img\" aria-label=\"{}\"",
        super::html::escape(label)
    );
    Some(element.replacen("<svg", &attrs, 1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_svg_element_with_a_label_and_no_script_or_style() {
        let s = super::svg("otpauth://totp/Blitz:a@x.io?secret=ABC", "QR \"code\"").unwrap();
        assert!(s.starts_with("<svg class=\"qr\" role=\"img\" aria-label=\"QR &quot;code&quot;\""));
        assert!(s.ends_with("</svg>") && s.contains("<path"));
        let lower = s.to_ascii_lowercase();
        for bad in ["<?xml", "<script", "style", "href"] {
            assert!(!lower.contains(bad), "{bad} in {s}");
        }
        assert!(super::svg(&"x".repeat(5000), "too long").is_none());
    }
}
