//! Reading images: their headers (size and colour) and their pixels, converted to grey or RGB,
//! resized and written planar (CHW) straight into the split's buffer, in parallel over the files.
//! Unsupported formats and truncated JPEGs are reported as bad images.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use rayon::prelude::*;

use crate::folder::options::{extension, RESIZE_FILTER, UNSUPPORTED_IMAGE_EXTENSIONS};
use crate::folder::scan::{Entry, Part};
use crate::{cache, Split};

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

/// An image file's bytes, when kept from the header read for the decode.
pub(crate) type Kept = Option<Vec<u8>>;

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

/// An image file's bytes. Each file is read once, here: the header is parsed and the pixels
/// decoded from the same bytes (before, each file was opened three times: for the header, for
/// the end-of-image check and for the pixels).
pub(crate) fn read_image_file(path: &Path) -> Result<Vec<u8>, String> {
    if let Some(reason) = unsupported_reason(path) {
        return Err(reason);
    }
    std::fs::read(path).map_err(|e| format!("cannot open: {e}"))
}

/// A reader over an image's bytes; like `ImageReader::open`, the format is guessed from the
/// contents first and from the file's extension otherwise.
fn reader_for<'b>(path: &Path, bytes: &'b [u8]) -> Result<ImageReader<Cursor<&'b [u8]>>, String> {
    if let Some(reason) = unsupported_reason(path) {
        return Err(reason);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes));
    if let Ok(format) = ImageFormat::from_path(path) {
        reader.set_format(format);
    }
    let reader = reader.with_guessed_format().map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not an image in a known format (PNG, JPEG, BMP, GIF, WebP)".into());
    }
    Ok(reader)
}

/// A JPEG's size and colour read from its frame header (SOF0, SOF1 or SOF2, 8-bit, 1 or 3
/// components: what the decoder reads as grey or RGB), walking the segments before it; `None`
/// for anything else, which is left to the decoder. `image`'s JPEG header read builds the
/// Huffman tables (the JPEG decoder parses every segment before the scan); for 32x32 images
/// that was as much work as decoding them.
fn jpeg_frame(bytes: &[u8]) -> Option<Probe> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    loop {
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        match *bytes.get(i + 1)? {
            0xFF => i += 1,
            0x01 | 0xD0..=0xD8 => i += 2,
            0xC0..=0xC2 => {
                let frame = bytes.get(i + 4..i + 10)?;
                let h = u16::from_be_bytes([frame[1], frame[2]]) as u32;
                let w = u16::from_be_bytes([frame[3], frame[4]]) as u32;
                let colour = match frame[5] {
                    1 => Colour::Grey,
                    3 => Colour::Rgb,
                    _ => return None,
                };
                return (frame[0] == 8 && h > 0 && w > 0).then_some((h, w, colour));
            }
            // Other frame types (arithmetic, lossless, hierarchical), the scan or the end before
            // any frame: the decoder says what it makes of them.
            0xC3..=0xCF | 0xD9 | 0xDA => return None,
            _ => i += 2 + u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]) as usize,
        }
    }
}

/// Reads an image's header from its bytes.
pub(crate) fn probe(path: &Path, bytes: &[u8]) -> Result<Probe, String> {
    let reader = reader_for(path, bytes)?;
    if reader.format() == Some(ImageFormat::Jpeg) {
        if let Some(probe) = jpeg_frame(bytes) {
            return Ok(probe);
        }
    }
    let decoder = reader.into_decoder().map_err(why)?;
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
fn check_jpeg_complete(bytes: &[u8]) -> Result<(), String> {
    let truncated = || "truncated JPEG (no end-of-image marker): the file was cut short; copy it again".to_string();
    let tail = &bytes[bytes.len() - bytes.len().min(4096)..];
    if tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Ok(());
    }
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

thread_local! {
    /// A decode thread's interleaved RGB buffer, reused from image to image.
    static RGB: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decodes a JPEG that needs no conversion but RGB and no resize with `zune-jpeg` directly,
/// with the options `image` uses (so the pixels are the same bytes), into a reused buffer and
/// then planar into `out`. Through `image` each image costs two decoders (each builds the
/// Huffman tables: one for the header, one for the pixels), a copy of the bytes and a fresh
/// pixel buffer. With the single read, the CIFAR-10 decode phase went from ~2.7 s to ~1.9 s.
/// `None` when the image is not such a JPEG or does not decode: the general path then decodes
/// it (and words the error as before).
fn decode_jpeg_rgb(bytes: &[u8], (h, w): (u32, u32), out: &mut [u8]) -> Option<()> {
    use zune_core::colorspace::ColorSpace;
    let options = zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), options);
    decoder.decode_headers().ok()?;
    let (dw, dh) = decoder.dimensions()?;
    // `image` keeps RGBA and grey as they are and converts every other colour space to RGB.
    let colour = decoder.input_colorspace()?;
    // Over `image`'s default allocation limit (512 MiB) the general path fails as it did.
    if (dh, dw) != (h as usize, w as usize)
        || matches!(colour, ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA)
        || decoder.output_buffer_size()? != out.len()
        || out.len() > 512 << 20
    {
        return None;
    }
    RGB.with_borrow_mut(|rgb| {
        rgb.resize(out.len(), 0);
        decoder.decode_into(rgb).ok()?;
        let plane = out.len() / 3;
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            r[i] = px[0];
            g[i] = px[1];
            b[i] = px[2];
        }
        Some(())
    })
}

/// Decodes an image from its bytes and writes it into `out` (channels × height × width),
/// converted and resized as needed; returns whether it was resized.
fn decode_into(path: &Path, bytes: &[u8], channels: usize, (h, w): (u32, u32), out: &mut [u8]) -> Result<bool, String> {
    let reader = reader_for(path, bytes)?;
    if reader.format() == Some(ImageFormat::Jpeg) {
        check_jpeg_complete(bytes)?;
        if channels == 3 && decode_jpeg_rgb(bytes, (h, w), out).is_some() {
            return Ok(false);
        }
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
    /// Whether every image is in the stream's temp file at its place.
    pub streamed: bool,
}

/// One split's work: its entries, their kept bytes, its buffer and each entry's result.
struct Work<'a> {
    part: Part,
    entries: Vec<&'a Entry>,
    kept: Vec<Kept>,
    images: Vec<u8>,
    results: Vec<Result<bool, String>>,
}

/// Images decoded per step of the streamed cache write: about 16 MiB of pixels.
const CHUNK_BYTES: usize = 16 << 20;

/// Decodes every entry (files under `root`) into its place in its split's NCHW buffer, in
/// parallel, converted to `channels` and resized to (h, w); entries that fail are left out of
/// the split and listed in `bad`. An entry's bytes are those read for its header when they were
/// kept (each is dropped once decoded), else the file is read again.
///
/// With a `stream`, the images are decoded in steps of ~16 MiB and each step is written to the
/// cache's temp file (and synced) by another thread while the next is decoded, at the place the
/// cache layout gives it, so that the write and its sync overlap the decode instead of following
/// it (CIFAR-10: the 176 MiB write and fsync took 0.6–1.7 s after the decode; now only the
/// fingerprint, ~0.15 s, follows it). The stream is only good when no image failed
/// (`DecodedSplits::streamed`): a failure moves the images after it.
pub(crate) fn decode_splits<'a>(
    root: &Path,
    readable: Vec<(&'a Entry, Kept)>,
    channels: usize,
    (height, width): (u32, u32),
    stream: Option<&cache::Stream>,
) -> DecodedSplits<'a> {
    let image_len = channels * height as usize * width as usize;
    let mut works: Vec<Work> = [Part::Train, Part::Test, Part::Val]
        .into_iter()
        .map(|part| Work {
            part,
            entries: Vec::new(),
            kept: Vec::new(),
            images: Vec::new(),
            results: Vec::new(),
        })
        .collect();
    for (e, bytes) in readable {
        let w = works.iter_mut().find(|w| w.part == e.part).expect("a part");
        w.entries.push(e);
        w.kept.push(bytes);
    }
    works.retain(|w| w.part != Part::Val || !w.entries.is_empty());
    for w in &mut works {
        w.images = vec![0u8; w.entries.len() * image_len];
    }
    let decode_one = |out: &mut [u8], e: &Entry, bytes: Kept| {
        let path = root.join(&e.rel);
        let bytes = match bytes {
            Some(b) => b,
            None => read_image_file(&path)?,
        };
        decode_into(&path, &bytes, channels, (height, width), out)
    };
    let step = match stream {
        Some(_) => (CHUNK_BYTES / image_len.max(1)).max(1),
        None => usize::MAX,
    };
    let streamed = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<(u64, &[u8])>();
        let writer = stream.map(|stream| {
            s.spawn(move || -> std::io::Result<()> {
                for (offset, bytes) in rx {
                    stream.write_at(offset, bytes)?;
                    stream.sync()?;
                }
                Ok(())
            })
        });
        let mut offset = stream.map_or(0, cache::Stream::data_start);
        for Work {
            entries,
            kept,
            images,
            results,
            ..
        } in works.iter_mut()
        {
            let mut kept = std::mem::take(kept).into_iter();
            for (out, es) in images
                .chunks_mut((step.saturating_mul(image_len)).max(1))
                .zip(entries.chunks(step))
            {
                let bytes: Vec<Kept> = kept.by_ref().take(es.len()).collect();
                let step_results: Vec<Result<bool, String>> = out
                    .par_chunks_mut(image_len.max(1))
                    .zip(es.par_iter())
                    .zip(bytes.into_par_iter())
                    .map(|((out, e), bytes)| decode_one(out, e, bytes))
                    .collect();
                results.extend(step_results);
                let out: &[u8] = out;
                if writer.is_some() {
                    // A send fails only when the writer stopped on an error, which join reports.
                    let _ = tx.send((offset, out));
                }
                offset += out.len() as u64;
            }
            offset += entries.len() as u64; // the labels, written at the end
        }
        drop(tx);
        writer.is_some_and(|w| w.join().expect("the cache writer does not panic").is_ok())
    });
    let mut resized = 0;
    let mut decode_bad: Vec<(String, String)> = Vec::new();
    let mut out_splits: Vec<(Part, Split, Vec<&Entry>)> = Vec::new();
    for Work {
        part,
        entries,
        mut images,
        results,
        ..
    } in works
    {
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
        streamed: streamed && decode_bad.is_empty(),
        bad: decode_bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JPEGs of noisy pixels (so every Huffman code and the colour conversion are exercised),
    /// colour and grey, of sizes that are and are not multiples of the 8x8/16x16 blocks.
    fn jpegs() -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut seed = 12345u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8
        };
        for (h, w) in [(32, 32), (17, 33), (1, 1), (64, 48)] {
            for quality in [50, 95] {
                let rgb = image::RgbImage::from_fn(w, h, |x, y| {
                    image::Rgb([next(), (x * 8) as u8 ^ (next() / 4), (y * 8) as u8])
                });
                let grey = DynamicImage::ImageRgb8(rgb.clone()).into_luma8();
                for (name, img) in [
                    ("rgb", DynamicImage::ImageRgb8(rgb)),
                    ("grey", DynamicImage::ImageLuma8(grey)),
                ] {
                    let mut bytes = Vec::new();
                    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality);
                    img.write_with_encoder(encoder).expect("encodes");
                    out.push((format!("{name}-{h}x{w}-q{quality}.jpg"), bytes));
                }
            }
        }
        out
    }

    /// The previous path: `image` reads the header, decodes, converts and writes planar.
    fn through_image(bytes: &[u8], channels: usize, size: (u32, u32)) -> (Probe, Vec<u8>) {
        let decoder = image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes)).expect("a JPEG");
        let (w, h) = decoder.dimensions();
        let probe = (h, w, Colour::of(decoder.color_type()));
        let img = image::load_from_memory(bytes).expect("decodes");
        let mut out = vec![0u8; channels * (size.0 * size.1) as usize];
        write_planar(img, channels, size, &mut out);
        (probe, out)
    }

    #[test]
    fn jpegs_read_from_bytes_and_the_frame_header_are_bit_identical_to_image() {
        for (name, bytes) in jpegs() {
            let path = Path::new(&name);
            let (expected_probe, _) = through_image(&bytes, 3, (1, 1));
            assert_eq!(jpeg_frame(&bytes), Some(expected_probe), "{name}");
            assert_eq!(probe(path, &bytes), Ok(expected_probe), "{name}");
            let (h, w, _) = expected_probe;
            // Own size, both channel counts; and resized (the general path).
            for (channels, size) in [(3, (h, w)), (1, (h, w)), (3, (8, 8))] {
                let (_, expected) = through_image(&bytes, channels, size);
                let mut out = vec![0u8; expected.len()];
                let resized = decode_into(path, &bytes, channels, size, &mut out).expect("decodes");
                assert_eq!(resized, size != (h, w), "{name}");
                assert_eq!(out, expected, "{name} channels {channels} size {size:?}");
            }
            if name.starts_with("rgb") {
                let mut out = vec![0u8; (3 * h * w) as usize];
                assert!(
                    decode_jpeg_rgb(&bytes, (h, w), &mut out).is_some(),
                    "{name} takes the direct path"
                );
            }
        }
    }

    #[test]
    fn a_corrupt_jpeg_frame_is_left_to_the_decoder() {
        let (_, bytes) = jpegs().remove(0);
        assert_eq!(jpeg_frame(&bytes[..2]), None);
        assert_eq!(jpeg_frame(&bytes[..20]), None);
        assert_eq!(jpeg_frame(b"not a jpeg"), None);
        // A cut-off JPEG: the header reads, the decode says it is truncated.
        let cut = &bytes[..bytes.len() / 2];
        let mut out = vec![0u8; 3 * 32 * 32];
        let e = decode_into(Path::new("cut.jpg"), cut, 3, (32, 32), &mut out).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }
}
