//! PDF documents written page by page: each page goes to the output as soon as it is done, so
//! a statement of 100,000 movements is never held whole in memory (the PDF library of the
//! first release kept every page until it saved: 839 MiB for such a statement).
//!
//! [`pdf_writer`] writes every object; this module only decides where each one goes. Every
//! object is written as its own chunk straight to the output, its offset noted for the
//! cross-reference table written at the end — the one piece of file structure `pdf_writer`
//! cannot write when its objects were not all kept in its own buffer.
//!
//! Text is set in DejaVu Sans, embedded whole as a CID font (Identity-H), with a `ToUnicode`
//! map of the glyphs used, so that Cyrillic prints as written and a reader copies it back as
//! text. "Page N of M" is possible before M is known: M is a form XObject every page refers
//! to, written once at the end.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::OnceLock;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::writers::DocumentInfo;
use pdf_writer::{Chunk, Content, Filter, Name, Rect, Ref, Str, TextStr};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The font file, compressed once per process.
fn font_file() -> &'static [u8] {
    static PACKED: OnceLock<Vec<u8>> = OnceLock::new();
    PACKED.get_or_init(|| deflate(FONT, Compression::default()))
}

/// A4, in points.
const PAGE: Rect = Rect {
    x1: 0.0,
    y1: 0.0,
    x2: 595.28,
    y2: 841.89,
};
/// Points per millimetre.
const PT: f32 = 72.0 / 25.4;
/// The size of the page total's figures ([`Document::text_then_total`]).
pub(crate) const TOTAL_SIZE: f32 = 7.0;
const FONT_NAME: Name<'static> = Name(b"F1");
const TOTAL_NAME: Name<'static> = Name(b"T");
const SYSTEM_INFO: SystemInfo<'static> = SystemInfo {
    registry: Str(b"Adobe"),
    ordering: Str(b"Identity"),
    supplement: 0,
};

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// Writing failed.
    #[error("writing the PDF: {0}")]
    Io(#[from] io::Error),
    /// The embedded font did not parse (a broken build).
    #[error("the embedded font: {0}")]
    Font(String),
}

fn deflate(data: &[u8], level: Compression) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::with_capacity(data.len() / 3), level);
    // Writing to a Vec cannot fail.
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

/// The embedded font: glyphs and their advances, and which glyphs were used (for the widths
/// and the `ToUnicode` map).
struct Font {
    face: ttf_parser::Face<'static>,
    /// Thousandths of an em per font unit.
    scale: f32,
    /// Glyph and advance (thousandths of an em) of the characters below U+0500 (Latin and
    /// Cyrillic: nearly every character of a statement), filled as they are met.
    near: Vec<Option<(u16, u16)>>,
    used: BTreeMap<u16, (char, u16)>,
}

impl Font {
    fn load() -> Result<Self, PdfError> {
        let face = ttf_parser::Face::parse(FONT, 0).map_err(|e| PdfError::Font(e.to_string()))?;
        Ok(Self {
            scale: 1000.0 / f32::from(face.units_per_em()),
            face,
            near: vec![None; 0x500],
            used: BTreeMap::new(),
        })
    }

    fn lookup(&mut self, c: char) -> (u16, u16) {
        let glyph = self.face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
        let advance = self.face.glyph_hor_advance(glyph).unwrap_or(0);
        let width = (f32::from(advance) * self.scale).round() as u16;
        self.used.entry(glyph.0).or_insert((c, width));
        (glyph.0, width)
    }

    fn glyph(&mut self, c: char) -> (u16, u16) {
        let i = c as usize;
        if i < self.near.len() {
            if let Some(g) = self.near[i] {
                return g;
            }
            let g = self.lookup(c);
            self.near[i] = Some(g);
            return g;
        }
        self.lookup(c)
    }

    /// `s` as glyph ids (two bytes each, Identity-H) appended to `out`; returns its width in
    /// thousandths of an em.
    fn encode(&mut self, s: &str, out: &mut Vec<u8>) -> f32 {
        let mut width = 0.0;
        for c in s.chars() {
            let (glyph, advance) = self.glyph(c);
            out.extend_from_slice(&glyph.to_be_bytes());
            width += f32::from(advance);
        }
        width
    }
}

/// Counts what passes to the output, for the cross-reference table.
struct Counted<W> {
    out: W,
    at: usize,
}

impl<W: Write> Counted<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.at += bytes.len();
        Ok(())
    }
}

/// Fixed object ids; pages take theirs from [`FIRST_FREE`] on.
const CATALOG: Ref = Ref::new(1);
const PAGE_TREE: Ref = Ref::new(2);
const INFO: Ref = Ref::new(3);
const TYPE0: Ref = Ref::new(4);
const CID_FONT: Ref = Ref::new(5);
const DESCRIPTOR: Ref = Ref::new(6);
const FONT_FILE: Ref = Ref::new(7);
const TO_UNICODE: Ref = Ref::new(8);
const TOTAL: Ref = Ref::new(9);
const FIRST_FREE: i32 = 10;

/// A PDF being written, a page at a time; positions and sizes in millimetres from the lower
/// left corner of an A4 page.
pub(crate) struct Document<W: Write> {
    out: Counted<W>,
    /// Byte offset of each object, by id (index 0 unused).
    offsets: Vec<Option<usize>>,
    next: Ref,
    font: Font,
    title: String,
    pages: Vec<Ref>,
    /// The open page's content, if a page is open.
    page: Option<Content>,
    glyphs: Vec<u8>,
}

impl<W: Write> Document<W> {
    /// Starts a document titled `title`, with no page open.
    pub(crate) fn start(title: &str, out: W) -> Result<Self, PdfError> {
        let mut doc = Self {
            out: Counted { out, at: 0 },
            offsets: vec![None; FIRST_FREE as usize],
            next: Ref::new(FIRST_FREE),
            font: Font::load()?,
            title: title.to_owned(),
            pages: Vec::new(),
            page: None,
            glyphs: Vec::new(),
        };
        // The header as `pdf_writer::Pdf` writes it: version, then bytes above 127 so that
        // transfer programs treat the file as binary.
        doc.out.put(b"%PDF-1.7\n%\x80\x80\x80\x80\n\n")?;
        Ok(doc)
    }

    /// Writes one indirect object, made by `f` in a chunk of its own.
    fn object(&mut self, f: impl FnOnce(&mut Chunk)) -> Result<(), PdfError> {
        let mut chunk = Chunk::new();
        f(&mut chunk);
        let mut refs = chunk.refs();
        let (Some(id), None) = (refs.next(), refs.next()) else {
            return Err(io::Error::other("one object per chunk").into());
        };
        let i = usize::try_from(id.get()).map_err(io::Error::other)?;
        if self.offsets.len() <= i {
            self.offsets.resize(i + 1, None);
        }
        self.offsets[i] = Some(self.out.at);
        self.out.put(chunk.as_bytes())?;
        Ok(())
    }

    /// The width of `s` at `size` points, in millimetres.
    #[cfg(test)]
    pub(crate) fn width(&mut self, s: &str, size: f32) -> f32 {
        let mut glyphs = Vec::new();
        self.font.encode(s, &mut glyphs) * size / 1000.0 / PT
    }

    /// Ends the open page, if any, and opens a new one.
    pub(crate) fn new_page(&mut self) -> Result<(), PdfError> {
        self.end_page()?;
        self.page = Some(Content::new());
        Ok(())
    }

    fn content(&mut self) -> &mut Content {
        self.page.get_or_insert_with(Content::new)
    }

    /// `s` at `size` points, its baseline starting at (`x`, `y`).
    pub(crate) fn text(&mut self, s: &str, size: f32, x: f32, y: f32) {
        self.place(s, size, |_| x, y);
    }

    /// `s` ending at `right`.
    pub(crate) fn text_right(&mut self, s: &str, size: f32, right: f32, y: f32) {
        self.place(s, size, |width| right - width, y);
    }

    /// `s` at [`TOTAL_SIZE`], followed by the document's page count.
    pub(crate) fn text_then_total(&mut self, s: &str, x: f32, y: f32) {
        let width = self.place(s, TOTAL_SIZE, |_| x, y);
        self.content()
            .save_state()
            .transform([1.0, 0.0, 0.0, 1.0, (x + width) * PT, y * PT])
            .x_object(TOTAL_NAME)
            .restore_state();
    }

    /// Encodes `s` once, shows it at the `x` that `left` gives for its width, and returns the
    /// width (all in millimetres).
    fn place(&mut self, s: &str, size: f32, left: impl FnOnce(f32) -> f32, y: f32) -> f32 {
        let mut glyphs = std::mem::take(&mut self.glyphs);
        glyphs.clear();
        let width = self.font.encode(s, &mut glyphs) * size / 1000.0 / PT;
        if !glyphs.is_empty() {
            let x = left(width);
            self.content()
                .begin_text()
                .set_font(FONT_NAME, size)
                .set_text_matrix([1.0, 0.0, 0.0, 1.0, x * PT, y * PT])
                .show(Str(&glyphs))
                .end_text();
        }
        self.glyphs = glyphs;
        width
    }

    /// A thin horizontal line from `x1` to `x2` at height `y`.
    pub(crate) fn rule(&mut self, x1: f32, x2: f32, y: f32) {
        self.content()
            .set_line_width(0.5)
            .move_to(x1 * PT, y * PT)
            .line_to(x2 * PT, y * PT)
            .stroke();
    }

    /// How many pages have been ended or opened.
    pub(crate) fn page_count(&self) -> usize {
        self.pages.len() + usize::from(self.page.is_some())
    }

    fn end_page(&mut self) -> Result<(), PdfError> {
        let Some(content) = self.page.take() else {
            return Ok(());
        };
        let data = deflate(&content.finish().into_vec(), Compression::fast());
        let content_id = self.next.bump();
        let page_id = self.next.bump();
        self.object(|c| {
            c.stream(content_id, &data).filter(Filter::FlateDecode);
        })?;
        self.object(|c| {
            let mut page = c.page(page_id);
            page.media_box(PAGE).parent(PAGE_TREE).contents(content_id);
            let mut resources = page.resources();
            resources.fonts().pair(FONT_NAME, TYPE0);
            resources.x_objects().pair(TOTAL_NAME, TOTAL);
        })?;
        self.pages.push(page_id);
        Ok(())
    }

    /// Ends the last page, writes the page count, the font, the page tree and the
    /// cross-reference table, and flushes.
    pub(crate) fn finish(mut self) -> Result<W, PdfError> {
        if self.page_count() == 0 {
            self.new_page()?;
        }
        self.end_page()?;

        let total = self.pages.len().to_string();
        let mut glyphs = Vec::new();
        let width = self.font.encode(&total, &mut glyphs) * TOTAL_SIZE / 1000.0;
        let mut content = Content::new();
        content
            .begin_text()
            .set_font(FONT_NAME, TOTAL_SIZE)
            .show(Str(&glyphs))
            .end_text();
        let content = content.finish().into_vec();
        self.object(|c| {
            let mut form = c.form_xobject(TOTAL, &content);
            form.bbox(Rect::new(0.0, -3.0, width, TOTAL_SIZE));
            form.resources().fonts().pair(FONT_NAME, TYPE0);
        })?;

        self.write_font()?;
        let pages = std::mem::take(&mut self.pages);
        self.object(|c| {
            c.pages(PAGE_TREE)
                .kids(pages.iter().copied())
                .count(i32::try_from(pages.len()).unwrap_or(i32::MAX));
        })?;
        self.object(|c| {
            c.indirect(CATALOG)
                .start::<pdf_writer::writers::Catalog>()
                .pages(PAGE_TREE);
        })?;
        let title = std::mem::take(&mut self.title);
        self.object(|c| {
            c.indirect(INFO)
                .start::<DocumentInfo>()
                .title(TextStr(&title))
                .producer(TextStr("Tresor"));
        })?;
        self.write_xref()?;
        let Counted { mut out, .. } = self.out;
        out.flush()?;
        Ok(out)
    }

    fn write_font(&mut self) -> Result<(), PdfError> {
        let base = Name(b"DejaVuSans");
        self.object(|c| {
            c.type0_font(TYPE0)
                .base_font(base)
                .encoding_predefined(Name(b"Identity-H"))
                .descendant_font(CID_FONT)
                .to_unicode(TO_UNICODE);
        })?;
        let used: Vec<(u16, u16)> = self.font.used.iter().map(|(g, (_, w))| (*g, *w)).collect();
        self.object(|c| {
            let mut cid = c.cid_font(CID_FONT);
            cid.subtype(CidFontType::Type2)
                .base_font(base)
                .system_info(SYSTEM_INFO)
                .font_descriptor(DESCRIPTOR)
                .default_width(0.0)
                .cid_to_gid_map_predefined(Name(b"Identity"));
            let mut widths = cid.widths();
            for (glyph, width) in &used {
                widths.consecutive(*glyph, [f32::from(*width)]);
            }
        })?;
        let face = &self.font.face;
        let s = self.font.scale;
        let bbox = face.global_bounding_box();
        let bbox = Rect::new(
            f32::from(bbox.x_min) * s,
            f32::from(bbox.y_min) * s,
            f32::from(bbox.x_max) * s,
            f32::from(bbox.y_max) * s,
        );
        let ascent = f32::from(face.ascender()) * s;
        let descent = f32::from(face.descender()) * s;
        let cap = f32::from(face.capital_height().unwrap_or(face.ascender())) * s;
        self.object(|c| {
            c.font_descriptor(DESCRIPTOR)
                .name(base)
                .flags(FontFlags::NON_SYMBOLIC)
                .bbox(bbox)
                .italic_angle(0.0)
                .ascent(ascent)
                .descent(descent)
                .cap_height(cap)
                .stem_v(80.0)
                .font_file2(FONT_FILE);
        })?;
        let packed = font_file();
        self.object(|c| {
            c.stream(FONT_FILE, packed)
                .filter(Filter::FlateDecode)
                .pair(Name(b"Length1"), i32::try_from(FONT.len()).unwrap_or(0));
        })?;
        let mut cmap = pdf_writer::types::UnicodeCmap::new(Name(b"Tresor-UTF16"), SYSTEM_INFO);
        for (glyph, (c, _)) in &self.font.used {
            cmap.pair(*glyph, *c);
        }
        let cmap = cmap.finish().into_vec();
        self.object(|c| {
            c.cmap(TO_UNICODE, &cmap)
                .name(Name(b"Tresor-UTF16"))
                .system_info(SYSTEM_INFO);
        })
    }

    /// The cross-reference table and trailer (ISO 32000-1, 7.5.4 and 7.5.5): every object
    /// from 1 on is in use, at the offset noted when it was written.
    fn write_xref(&mut self) -> Result<(), PdfError> {
        let start = self.out.at;
        let size = self.offsets.len();
        let mut table = String::with_capacity(32 + size * 20);
        table.push_str(&format!("xref\n0 {size}\n0000000000 65535 f\r\n"));
        for (id, offset) in self.offsets.iter().enumerate().skip(1) {
            let offset =
                offset.ok_or_else(|| io::Error::other(format!("object {id} unwritten")))?;
            table.push_str(&format!("{offset:010} 00000 n\r\n"));
        }
        table.push_str(&format!(
            "trailer\n<< /Size {size} /Root {} 0 R /Info {} 0 R >>\nstartxref\n{start}\n%%EOF\n",
            CATALOG.get(),
            INFO.get()
        ));
        self.out.put(table.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(pages: usize) -> Vec<u8> {
        let mut doc = Document::start("Test", Vec::new()).unwrap();
        for n in 1..=pages {
            doc.new_page().unwrap();
            doc.text("Виписка — Statement", 12.0, 20.0, 270.0);
            doc.text_right("1 234.56", 9.0, 190.0, 250.0);
            doc.rule(20.0, 190.0, 248.0);
            doc.text_then_total(&format!("Page {n} of "), 20.0, 10.0);
        }
        doc.finish().unwrap()
    }

    /// The offset each `N 0 obj` actually starts at, and the table's entry for it.
    fn xref_agrees(pdf: &[u8]) {
        let tail = std::str::from_utf8(&pdf[pdf.len() - 40..]).expect("an ASCII tail");
        let start: usize = tail
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        let table = std::str::from_utf8(&pdf[start..]).expect("an ASCII table");
        assert!(table.starts_with("xref\n0 "));
        let size: usize = table.lines().nth(1).unwrap()[2..].parse().unwrap();
        for (id, line) in table.lines().skip(3).take(size - 1).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            let want = format!("{} 0 obj", id + 1);
            assert!(
                pdf[offset..].starts_with(want.as_bytes()),
                "object {} not at {offset}",
                id + 1
            );
        }
    }

    #[test]
    fn every_object_is_where_the_table_says() {
        for pages in [0, 1, 3] {
            let pdf = document(pages);
            assert!(pdf.starts_with(b"%PDF-1.7"));
            assert!(pdf.ends_with(b"%%EOF\n"));
            xref_agrees(&pdf);
        }
    }

    #[test]
    fn widths_come_from_the_font() {
        let mut doc = Document::start("Test", Vec::new()).unwrap();
        // DejaVu Sans's digits are all 0.636 em wide.
        let w = doc.width("0123456789", 10.0);
        let want = 10.0 * 0.636 * 10.0 / PT;
        assert!((w - want).abs() < 0.01, "{w} vs {want}");
        assert!(doc.width("Ґ", 10.0) > 0.0);
        assert_eq!(doc.width("", 10.0), 0.0);
    }
}
