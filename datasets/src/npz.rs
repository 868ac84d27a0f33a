//! NumPy .npz datasets as Keras ships them: `x_train`, `y_train`, `x_test`, `y_test`, images as
//! uint8 NHWC (N, H, W, C) or NHW (N, H, W) — NCHW (N, C, H, W) with C 1 or 3 is recognised too —
//! and labels of any integer dtype, shaped (N,) or (N, 1). An optional string array
//! `class_names` names the classes; otherwise they are "0", "1", …. Read with the `npyz` crate.
//! Not cached: an .npz holds raw bytes already.

use std::path::Path;
use std::time::Instant;

use npyz::npz::NpzArchive;
use npyz::{DType, NpyFile, Order, TypeChar};
use rayon::prelude::*;

use crate::decoded::{Decoded, Mode, Outcome};
use crate::folder::{count_problems, write_planar, FolderOptions, RESIZE_FILTER_NAME};
use crate::report::{human_bytes, ClassCount, ColourCount, DatasetReport, Layout, SizeCount};
use crate::{DataError, Split};

/// How one image array is stored.
#[derive(Debug, Clone, Copy)]
struct Shape {
    n: usize,
    channels: usize,
    height: usize,
    width: usize,
    /// NCHW rather than NHWC / NHW.
    planar: bool,
}

fn invalid(path: &Path, problem: String) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        problems: vec![problem],
    }
}

fn open_array<'a, R: std::io::Read + std::io::Seek>(
    path: &Path,
    archive: &'a mut NpzArchive<R>,
    name: &str,
) -> Result<NpyFile<npyz::zip::read::ZipFile<'a>>, DataError> {
    match archive.by_name(name) {
        Ok(Some(npy)) => Ok(npy),
        Ok(None) => Err(invalid(path, format!("{}: no array '{name}'", path.display()))),
        Err(e) => Err(invalid(
            path,
            format!("{}: array '{name}' cannot be read ({e})", path.display()),
        )),
    }
}

fn check_c_order(path: &Path, name: &str, npy: &NpyFile<impl std::io::Read>) -> Result<(), DataError> {
    if npy.order() == Order::Fortran {
        return Err(invalid(
            path,
            format!(
                "{}: '{name}' is stored in Fortran order: save np.ascontiguousarray({name})",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn image_shape(path: &Path, name: &str, npy: &NpyFile<impl std::io::Read>) -> Result<Shape, DataError> {
    check_c_order(path, name, npy)?;
    let dtype_ok = matches!(npy.dtype(), DType::Plain(ref t) if t.type_char() == TypeChar::Uint && t.size_field() == 1);
    if !dtype_ok {
        return Err(invalid(
            path,
            format!(
                "{}: '{name}' has dtype {}; images must be uint8 (0–255): save {name}.astype(np.uint8)",
                path.display(),
                npy.dtype().descr()
            ),
        ));
    }
    let s: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let shape = match s[..] {
        [n, h, w] => Shape {
            n,
            channels: 1,
            height: h,
            width: w,
            planar: true,
        },
        [n, h, w, c] if c == 1 || c == 3 => Shape {
            n,
            channels: c,
            height: h,
            width: w,
            planar: c == 1,
        },
        [n, c, h, w] if (c == 1 || c == 3) && w != 1 && w != 3 => Shape {
            n,
            channels: c,
            height: h,
            width: w,
            planar: true,
        },
        _ => {
            return Err(invalid(
                path,
                format!(
                    "{}: '{name}' has shape {s:?}; expected (N, H, W) or (N, H, W, C) with C 1 or 3",
                    path.display()
                ),
            ))
        }
    };
    if shape.height == 0 || shape.width == 0 {
        return Err(invalid(
            path,
            format!("{}: '{name}' has empty images ({s:?})", path.display()),
        ));
    }
    Ok(shape)
}

fn read_labels<R: std::io::Read>(path: &Path, name: &str, npy: NpyFile<R>, n: usize) -> Result<Vec<u8>, DataError> {
    check_c_order(path, name, &npy)?;
    let shape: Vec<u64> = npy.shape().to_vec();
    if !(shape == [n as u64] || shape == [n as u64, 1]) {
        return Err(invalid(
            path,
            format!(
                "{}: '{name}' has shape {shape:?}; expected ({n},) or ({n}, 1), one label per image",
                path.display()
            ),
        ));
    }
    let DType::Plain(t) = npy.dtype() else {
        return Err(invalid(
            path,
            format!("{}: '{name}' is not an integer array", path.display()),
        ));
    };
    let io = |e: std::io::Error| invalid(path, format!("{}: '{name}' cannot be read ({e})", path.display()));
    let values: Vec<i128> = match (t.type_char(), t.size_field()) {
        (TypeChar::Uint, 1) => npy.into_vec::<u8>().map_err(io)?.into_iter().map(i128::from).collect(),
        (TypeChar::Uint, 2) => npy.into_vec::<u16>().map_err(io)?.into_iter().map(i128::from).collect(),
        (TypeChar::Uint, 4) => npy.into_vec::<u32>().map_err(io)?.into_iter().map(i128::from).collect(),
        (TypeChar::Uint, 8) => npy.into_vec::<u64>().map_err(io)?.into_iter().map(i128::from).collect(),
        (TypeChar::Int, 1) => npy.into_vec::<i8>().map_err(io)?.into_iter().map(i128::from).collect(),
        (TypeChar::Int, 2) => npy.into_vec::<i16>().map_err(io)?.into_iter().map(i128::from).collect(),
        (TypeChar::Int, 4) => npy.into_vec::<i32>().map_err(io)?.into_iter().map(i128::from).collect(),
        (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(io)?.into_iter().map(i128::from).collect(),
        _ => {
            return Err(invalid(
                path,
                format!(
                    "{}: '{name}' has dtype {}; labels must be integers: save {name}.astype(np.int64)",
                    path.display(),
                    t
                ),
            ))
        }
    };
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            u8::try_from(v).map_err(|_| {
                invalid(
                    path,
                    format!(
                        "{}: {name}[{i}] is {v}; labels must be 0 to 255 (class indices)",
                        path.display()
                    ),
                )
            })
        })
        .collect()
}

/// Reads an image array into NCHW with `channels` and (height, width), converting and
/// resizing each image when they differ from the stored ones; returns the count resized.
fn read_images<R: std::io::Read>(
    path: &Path,
    name: &str,
    npy: NpyFile<R>,
    stored: Shape,
    channels: usize,
    (height, width): (u32, u32),
) -> Result<(Vec<u8>, usize), DataError> {
    let raw = npy
        .into_vec::<u8>()
        .map_err(|e| invalid(path, format!("{}: '{name}' cannot be read ({e})", path.display())))?;
    let same_size = (stored.height, stored.width) == (height as usize, width as usize);
    if stored.planar && stored.channels == channels && same_size {
        return Ok((raw, 0));
    }
    let stored_len = stored.channels * stored.height * stored.width;
    let out_len = channels * height as usize * width as usize;
    let mut out = vec![0u8; stored.n * out_len];
    out.par_chunks_mut(out_len.max(1))
        .zip(raw.par_chunks(stored_len.max(1)))
        .for_each(|(out, src)| {
            let (h, w) = (stored.height as u32, stored.width as u32);
            // Back to interleaved HWC for the image crate.
            let hwc: Vec<u8> = if stored.planar && stored.channels == 3 {
                let plane = stored.height * stored.width;
                (0..plane)
                    .flat_map(|i| [src[i], src[plane + i], src[2 * plane + i]])
                    .collect()
            } else {
                src.to_vec()
            };
            let img = if stored.channels == 1 {
                image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, hwc).expect("sized"))
            } else {
                image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, hwc).expect("sized"))
            };
            write_planar(img, channels, (height, width), out);
        });
    Ok((out, if same_size { 0 } else { stored.n }))
}

/// Loads, inspects or describes an .npz dataset.
pub(crate) fn run(path: &Path, options: &FolderOptions, mode: Mode) -> Result<Outcome, DataError> {
    let started = Instant::now();
    let mut archive = NpzArchive::open(path).map_err(|e| {
        invalid(
            path,
            format!(
                "{} is not a readable .npz file ({e}): save it with np.savez(PATH, x_train=…, y_train=…, x_test=…, y_test=…)",
                path.display()
            ),
        )
    })?;
    let names: Vec<String> = archive.array_names().map(String::from).collect();
    let missing: Vec<&str> = ["x_train", "y_train", "x_test", "y_test"]
        .into_iter()
        .filter(|n| !names.iter().any(|m| m == n))
        .collect();
    if !missing.is_empty() {
        return Err(invalid(
            path,
            format!(
                "{} has no array {} (it has: {}): save it with np.savez(PATH, x_train=…, y_train=…, x_test=…, y_test=…)",
                path.display(),
                missing.join(", "),
                names.join(", ")
            ),
        ));
    }
    let train_shape = image_shape(path, "x_train", &open_array(path, &mut archive, "x_train")?)?;
    let test_shape = image_shape(path, "x_test", &open_array(path, &mut archive, "x_test")?)?;
    if (train_shape.channels, train_shape.height, train_shape.width)
        != (test_shape.channels, test_shape.height, test_shape.width)
    {
        return Err(invalid(
            path,
            format!(
                "{}: x_train images are {}x{}x{} but x_test images are {}x{}x{} (channels x height x width); they must match",
                path.display(),
                train_shape.channels,
                train_shape.height,
                train_shape.width,
                test_shape.channels,
                test_shape.height,
                test_shape.width
            ),
        ));
    }
    let y_train = read_labels(
        path,
        "y_train",
        open_array(path, &mut archive, "y_train")?,
        train_shape.n,
    )?;
    let y_test = read_labels(path, "y_test", open_array(path, &mut archive, "y_test")?, test_shape.n)?;
    let max_label = y_train.iter().chain(&y_test).copied().max().unwrap_or(0) as usize;
    let mut classes: Vec<String> = (0..=max_label).map(|l| l.to_string()).collect();
    let mut notes = Vec::new();
    if names.iter().any(|n| n == "class_names") {
        let npy = open_array(path, &mut archive, "class_names")?;
        match npy.into_vec::<String>() {
            Ok(given) if given.len() > max_label => classes = given,
            Ok(given) => notes.push(format!(
                "class_names has {} names but the labels go up to {max_label}; classes are named by number",
                given.len()
            )),
            Err(e) => notes.push(format!(
                "class_names cannot be read as strings ({e}); classes are named by number"
            )),
        }
    }

    let (height, width) = options
        .image_size
        .unwrap_or((train_shape.height as u32, train_shape.width as u32));
    let channels = options.channels.map_or(train_shape.channels, usize::from);
    let image_len = channels * height as usize * width as usize;
    let total = train_shape.n + test_shape.n;
    let mut counts: Vec<ClassCount> = classes
        .iter()
        .map(|name| ClassCount {
            name: name.clone(),
            train: 0,
            test: 0,
            val: 0,
        })
        .collect();
    for &l in &y_train {
        counts[l as usize].train += 1;
    }
    for &l in &y_test {
        counts[l as usize].test += 1;
    }
    let memory_available = options.memory_limit.or_else(crate::memory::available_memory);
    let memory_needed = (total * (image_len + 1)) as u64;
    let resize = (train_shape.height, train_shape.width) != (height as usize, width as usize);
    if resize {
        notes.push(format!(
            "all {total} images are {}x{} and are resized to {height}x{width} (`[dataset] image_size`)",
            train_shape.height, train_shape.width
        ));
    }
    if train_shape.planar && train_shape.channels == 3 {
        notes.push("images stored NCHW (N, C, H, W)".into());
    }
    notes.push("an .npz is read directly, not cached".into());
    let mut problems = count_problems(path, Layout::Npz, &counts, options);
    problems.retain(|p| !p.contains("test_fraction"));
    let fits = memory_available.is_none_or(|a| memory_needed <= a);
    if !fits {
        problems.push(format!(
            "the images need {} as uint8 but only {} of memory is available",
            human_bytes(memory_needed),
            human_bytes(memory_available.unwrap_or(0))
        ));
    }
    let mut report = DatasetReport {
        source: path.display().to_string(),
        layout: Layout::Npz,
        classes: counts,
        channels,
        height: height as usize,
        width: width as usize,
        sizes_found: vec![SizeCount {
            height: train_shape.height as u32,
            width: train_shape.width as u32,
            count: total,
        }],
        colours_found: vec![ColourCount {
            colour: if train_shape.channels == 1 { "grey" } else { "rgb" }.into(),
            count: total,
        }],
        resized: if resize { total } else { 0 },
        resize_filter: RESIZE_FILTER_NAME.to_string(),
        memory_needed,
        memory_available,
        ignored_files: 0,
        ignored_examples: Vec::new(),
        bad_images: 0,
        bad_examples: Vec::new(),
        problems,
        notes,
        fingerprint: None,
        from_cache: false,
        cache_file: None,
        seconds: 0.0,
    };
    match mode {
        Mode::Describe => {
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(Outcome { data: None, report });
        }
        Mode::Load if !fits => {
            return Err(DataError::OutOfMemory {
                path: path.to_path_buf(),
                needed: memory_needed,
                available: memory_available.unwrap_or(0),
                images: total,
                shape: format!("{channels}x{height}x{width}"),
            })
        }
        Mode::Load if !report.problems.is_empty() => {
            return Err(DataError::Invalid {
                path: path.to_path_buf(),
                problems: report.problems,
            })
        }
        Mode::Inspect if !fits => {
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(Outcome { data: None, report });
        }
        _ => {}
    }
    let target = (channels, (height, width));
    let (x_train, _) = read_images(
        path,
        "x_train",
        open_array(path, &mut archive, "x_train")?,
        train_shape,
        target.0,
        target.1,
    )?;
    let (x_test, _) = read_images(
        path,
        "x_test",
        open_array(path, &mut archive, "x_test")?,
        test_shape,
        target.0,
        target.1,
    )?;
    let decoded = Decoded {
        classes,
        channels,
        height: height as usize,
        width: width as usize,
        train: Split {
            images: x_train,
            labels: y_train,
        },
        test: Split {
            images: x_test,
            labels: y_test,
        },
        val: None,
    };
    report.fingerprint = Some(crate::fingerprint_of(
        &crate::DataRef::Path(path.to_path_buf()),
        &decoded.classes,
        decoded.classes.len(),
        (decoded.channels, decoded.height, decoded.width),
        &decoded.train,
        &decoded.test,
    ));
    report.seconds = started.elapsed().as_secs_f64();
    Ok(Outcome {
        data: Some(decoded),
        report,
    })
}
