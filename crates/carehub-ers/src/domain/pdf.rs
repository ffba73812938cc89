//! A small PDF writer for e-RS's letters and summaries (A019, A007, A043): pages of text in
//! Helvetica (one of the fourteen fonts every PDF reader has, so nothing is embedded), with
//! headings, and the cross-reference table readers need. Text outside Latin-1 is replaced, as the
//! standard fonts cannot draw it.

/// One line of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A heading, in bold.
    Heading(String),
    /// A line of text; long lines are wrapped.
    Text(String),
    /// An empty line.
    Gap,
}

const PAGE_WIDTH: f32 = 595.0; // A4, in points
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const TEXT_SIZE: f32 = 10.5;
const HEADING_SIZE: f32 = 13.0;
const LEADING: f32 = 15.0;
/// Characters per line: Helvetica at 10.5 pt averages about 5.5 pt a character.
const WRAP: usize = 86;

/// Escapes text for a PDF string literal, in the WinAnsi subset the standard fonts draw.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if (c as u32) >= 0xA0 && (c as u32) <= 0xFF => {
                out.push_str(&format!("\\{:03o}", c as u32))
            }
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

fn wrap(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > WRAP {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Lays out `lines` on as many A4 pages as they need and returns the PDF file.
pub fn document(title: &str, lines: &[Line]) -> Vec<u8> {
    // Page content streams.
    let mut pages: Vec<String> = Vec::new();
    let mut stream = String::new();
    let mut y = PAGE_HEIGHT - MARGIN;
    let place = |font: &str,
                 size: f32,
                 text: &str,
                 stream: &mut String,
                 y: &mut f32,
                 pages: &mut Vec<String>| {
        if *y < MARGIN {
            pages.push(std::mem::take(stream));
            *y = PAGE_HEIGHT - MARGIN;
        }
        stream.push_str(&format!(
            "BT /{font} {size} Tf {MARGIN} {y:.1} Td {} Tj ET\n",
            literal(text)
        ));
        *y -= LEADING;
    };
    for line in lines {
        match line {
            Line::Heading(text) => {
                y -= 4.0;
                place("F2", HEADING_SIZE, text, &mut stream, &mut y, &mut pages);
            }
            Line::Text(text) => {
                for part in wrap(text) {
                    place("F1", TEXT_SIZE, &part, &mut stream, &mut y, &mut pages);
                }
            }
            Line::Gap => y -= LEADING / 2.0,
        }
    }
    pages.push(stream);

    // Objects: 1 catalog, 2 pages, 3 regular font, 4 bold font, 5 info, then a page and its
    // content for each page.
    let count = pages.len();
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {count} >>",
            (0..count)
                .map(|i| format!("{} 0 R", 6 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .to_owned(),
        format!("<< /Title {} /Producer (carehub) >>", literal(title)),
    ];
    for (i, content) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
             /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
            7 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ));
    }
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file as text, one character per byte, so that offsets stay byte offsets.
    fn text(pdf: &[u8]) -> String {
        pdf.iter()
            .map(|&b| if b.is_ascii() { b as char } else { '?' })
            .collect()
    }

    /// The cross-reference table points at each object, as readers require.
    fn check_xref(pdf: &[u8]) {
        let body = text(pdf);
        let start: usize = body
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(body[start..].starts_with("xref\n"));
        let entries: Vec<&str> = body[start..]
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .collect();
        assert!(!entries.is_empty());
        for (i, entry) in entries.iter().enumerate() {
            let offset: usize = entry[..10].parse().unwrap();
            assert!(
                body[offset..].starts_with(&format!("{} 0 obj", i + 1)),
                "object {}",
                i + 1
            );
        }
    }

    #[test]
    fn a_letter_is_a_valid_pdf_with_its_text() {
        let pdf = document(
            "Letter",
            &[
                Line::Heading("Your referral".into()),
                Line::Gap,
                Line::Text("UBRN 1000 0000 0001 (password: abcd)".into()),
            ],
        );
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(text(&pdf).trim_end().ends_with("%%EOF"));
        assert!(text(&pdf).contains("(UBRN 1000 0000 0001 \\(password: abcd\\))"));
        check_xref(&pdf);
    }

    #[test]
    fn long_documents_run_onto_more_pages_and_odd_characters_are_safe() {
        let lines: Vec<Line> = (0..200)
            .map(|i| Line::Text(format!("line {i} caf\u{e9} \u{2603} \\ end")))
            .collect();
        let pdf = document("Long", &lines);
        let body = text(&pdf);
        assert!(
            body.contains("/Count 5"),
            "200 lines at 15 pt on A4 take five pages"
        );
        assert!(body.contains("caf\\351 ? \\\\ end"));
        check_xref(&pdf);
    }

    #[test]
    fn wrapping_keeps_every_word() {
        let long = "word ".repeat(60);
        let lines = wrap(&long);
        assert!(lines.len() >= 3);
        assert!(lines.iter().all(|l| l.chars().count() <= WRAP));
        assert_eq!(lines.join(" ").split_whitespace().count(), 60);
    }
}
