//! Helpers shared by the test files: images written in temp folders, and loading them.
// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::path::Path;

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use nas_datasets::{load_path, FolderOptions, Loaded};

/// A solid image of `value` (colour: `value` in red, `value / 2` in green, 255 - value in blue).
pub fn image(h: u32, w: u32, value: u8, colour: bool) -> DynamicImage {
    if colour {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, image::Rgb([value, value / 2, 255 - value])))
    } else {
        DynamicImage::ImageLuma8(GrayImage::from_pixel(w, h, image::Luma([value])))
    }
}

pub fn save(path: &Path, img: &DynamicImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = ImageFormat::from_path(path).unwrap();
    // JPEG and GIF take 8-bit RGB (or grey for JPEG); the rest take what they get.
    let img = match format {
        ImageFormat::Gif => DynamicImage::ImageRgba8(img.to_rgba8()),
        _ => img.clone(),
    };
    img.save_with_format(path, format).unwrap();
}

/// `dir/<class>/<i>.png` for each (class, count), each class a distinct grey level (class
/// index × 40 + 20) or colour.
pub fn class_folders(dir: &Path, classes: &[(&str, usize)], colour: bool, size: (u32, u32)) {
    for (c, (name, n)) in classes.iter().enumerate() {
        for i in 0..*n {
            let img = image(size.0, size.1, c as u8 * 40 + 20, colour);
            save(&dir.join(name).join(format!("{i:03}.png")), &img);
        }
    }
}

pub fn opts() -> FolderOptions {
    FolderOptions {
        split_seed: 1,
        ..FolderOptions::default()
    }
}

pub fn load(dir: &Path, options: &FolderOptions, cache: Option<&Path>) -> Loaded {
    load_path(dir, options, cache).unwrap_or_else(|e| panic!("{e}"))
}

pub fn error(dir: &Path, options: &FolderOptions) -> String {
    match load_path(dir, options, None) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// The first pixel of each image of a split (its grey level: the class's value).
pub fn first_pixels(images: &[u8], image_len: usize) -> Vec<u8> {
    images.chunks_exact(image_len).map(|c| c[0]).collect()
}
