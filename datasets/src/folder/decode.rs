//! Reading images: their headers (size and colour) and their pixels, converted to grey or RGB,
//! resized and written planar (CHW) straight into the split's buffer, in parallel over the files.
//! Unsupported formats and truncated JPEGs are reported as bad images.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader};
use rayon::prelude::*;

use crate::folder::options::{extension, RESIZE_FILTER, UNSUPPORTED_IMAGE_EXTENSIONS};
use crate::folder::scan::{Entry, Part};
use crate::Split;

/// An image's stored colour type, simplified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Colour {
    Grey,
    GreyAlpha,
    Rgb,
    Rgba,
}

impl Colour {
    pub fn name(self) -> &'static str {
        match self {
            Colour::Grey => "grey",
            Colour::GreyAlpha => "grey+alpha",
            Colour::Rgb => "rgb",
            Colour::Rgba => "rgba",
        }
    }

    fn of(c: image::ColorType) -> Colour {
        match (c.has_color(), c.has_alpha()) {
            (false, false) => Colour::Grey,
            (false, true) => Colour::GreyAlpha,
            (true, false) => Colour::Rgb,
            (true, true) => Colour::Rgba,
        }
    }

    pub fn is_grey(self) -> bool {
        matches!(self, Colour::Grey | Colour::GreyAlpha)
    }
}

/// An image's header: (height, width, colour).
pub(crate) type Probe = (u32, u32, Colour);

fn unsupported_reason(path: &Path) -> Option<String> {
    let ext = extension(&path.file_name()?.to_string_lossy())?;
    UNSUPPORTED_IMAGE_EXTENSIONS.contains(&ext.as_str()).then(|| {
        format!(
            "{} images are not supported (PNG, JPEG, BMP, GIF and WebP are): convert it to PNG",
            ext.to_ascii_uppercase()
        )
    })
}

/// An error as one line, for a report.
fn why(e: impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn open(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, String> {
    if let Some(reason) = unsupported_reason(path) {
        return Err(reason);
    }
    let reader = ImageReader::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let reader = reader.with_guessed_format().map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not an image in a known format (PNG, JPEG, BMP, GIF, WebP)".into());
    }
    Ok(reader)
}

/// Reads an image's header only.
pub(crate) fn probe(path: &Path) -> Result<Probe, String> {
    let decoder = open(path)?.into_decoder().map_err(why)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(format!("the image is empty ({w}x{h})"));
    }
    Ok((h, w, Colour::of(decoder.color_type())))
}

/// A JPEG must have its end-of-image marker (FFD9) after its first scan: the decoder fills a
/// cut-off scan with grey instead of failing (PIL fails). Usually the marker ends the file; when
/// it is not in the last 4 KiB (data appended after it, as in "motion photos"), the segments
/// are walked to the first scan and the marker looked for after it (in entropy-coded data an
/// FF byte is always followed by 00, so FFD9 there is the marker).
fn check_jpeg_complete(path: &Path) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let truncated = || "truncated JPEG (no end-of-image marker): the file was cut short; copy it again".to_string();
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = f.metadata().map_err(why)?.len();
    let tail = len.min(4096);
    f.seek(SeekFrom::Start(len - tail)).map_err(why)?;
    let mut buf = Vec::with_capacity(tail as usize);
    f.read_to_end(&mut buf).map_err(why)?;
    if buf.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return Ok(()); // not a marker where one should be: leave it to the decoder
        }
        match bytes[i + 1] {
            0xFF => i += 1,
            0xDA => {
                return if bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]) {
                    Ok(())
                } else {
                    Err(truncated())
                };
            }
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => i += 2 + u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize,
        }
    }
    Err(truncated())
}

/// Decodes an image and writes it into `out` (channels × height × width), converted and resized
/// as needed; returns whether it was resized.
fn decode_into(path: &Path, channels: usize, (h, w): (u32, u32), out: &mut [u8]) -> Result<bool, String> {
    let reader = open(path)?;
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        check_jpeg_complete(path)?;
    }
    let img = reader.decode().map_err(why)?;
    Ok(write_planar(img, channels, (h, w), out))
}

/// Converts an image to `channels` (1 grey, 3 RGB; alpha is dropped), resizes it to (h, w) with
/// [`RESIZE_FILTER`] when it is another size, and writes it planar (CHW) into `out`.
pub(crate) fn write_planar(img: DynamicImage, channels: usize, (h, w): (u32, u32), out: &mut [u8]) -> bool {
    let resized = img.height() != h || img.width() != w;
    if channels == 1 {
        let mut grey = img.into_luma8();
        if resized {
            grey = image::imageops::resize(&grey, w, h, RESIZE_FILTER);
        }
        out.copy_from_slice(grey.as_raw());
    } else {
        let mut rgb = img.into_rgb8();
        if resized {
            rgb = image::imageops::resize(&rgb, w, h, RESIZE_FILTER);
        }
        let plane = (h * w) as usize;
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
            r[i] = px[0];
            g[i] = px[1];
            b[i] = px[2];
        }
    }
    resized
}

/// The images of the readable entries, decoded split by split.
pub(crate) struct DecodedSplits<'a> {
    /// Train, test, and val when it has images: each split with the entries it kept.
    pub splits: Vec<(Part, Split, Vec<&'a Entry>)>,
    /// How many images were resized.
    pub resized: usize,
    /// Entries whose header read but whose image does not decode (a truncated JPEG), with why.
    pub bad: Vec<(String, String)>,
}

/// Decodes every entry (files under `root`) into its place in its split's NCHW buffer, in
/// parallel, converted to `channels` and resized to (h, w); entries that fail are left out of
/// the split and listed in `bad`.
pub(crate) fn decode_splits<'a>(
    root: &Path,
    readable: &[&'a Entry],
    channels: usize,
    (height, width): (u32, u32),
) -> DecodedSplits<'a> {
    let image_len = channels * height as usize * width as usize;
    let mut splits: Vec<(Part, Vec<&Entry>, Vec<u8>)> = Vec::new();
    for part in [Part::Train, Part::Test, Part::Val] {
        let entries: Vec<&Entry> = readable.iter().filter(|e| e.part == part).copied().collect();
        if part == Part::Val && entries.is_empty() {
            continue;
        }
        let images = vec![0u8; entries.len() * image_len];
        splits.push((part, entries, images));
    }
    let mut resized = 0;
    let mut decode_bad: Vec<(String, String)> = Vec::new();
    let mut out_splits: Vec<(Part, Split, Vec<&Entry>)> = Vec::new();
    for (part, entries, mut images) in splits {
        let results: Vec<Result<bool, String>> = images
            .par_chunks_mut(image_len.max(1))
            .zip(entries.par_iter())
            .map(|(out, e)| decode_into(&root.join(&e.rel), channels, (height, width), out))
            .collect();
        let mut labels = Vec::with_capacity(entries.len());
        let mut kept = Vec::with_capacity(entries.len());
        let mut write = 0;
        for (i, (e, r)) in entries.iter().zip(results).enumerate() {
            match r {
                Ok(was_resized) => {
                    resized += was_resized as usize;
                    if write != i {
                        images.copy_within(i * image_len..(i + 1) * image_len, write * image_len);
                    }
                    write += 1;
                    labels.push(e.class as u8);
                    kept.push(*e);
                }
                Err(why) => decode_bad.push((e.rel.clone(), why)),
            }
        }
        images.truncate(write * image_len);
        out_splits.push((part, Split { images, labels }, kept));
    }
    DecodedSplits {
        splits: out_splits,
        resized,
        bad: decode_bad,
    }
}
