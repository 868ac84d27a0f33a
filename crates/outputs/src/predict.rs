//! `nas-host predict`: classifies image files with a model `nas-host export` wrote, reading its
//! model card for the input shape, normalisation and class names.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tch::{Kind, Tensor};

use crate::export::ModelCard;

/// `nas-host predict`: the classes an exported model gives to image files.
pub struct Prediction {
    pub path: PathBuf,
    pub class: usize,
    pub name: String,
    pub probability: f64,
    /// The image was resized from this (width, height) to the model's input.
    pub resized_from: Option<(u32, u32)>,
}

/// Classifies PNG or JPEG files with the model exported in `dir`. Images are converted to the
/// model's channels (grey or RGB) and, when their size differs, resized to its input with a
/// bilinear filter (reported per image).
pub fn predict(dir: &Path, images: &[PathBuf]) -> anyhow::Result<Vec<Prediction>> {
    let card_path = dir.join("model.json");
    let card: ModelCard = serde_json::from_str(&std::fs::read_to_string(&card_path).with_context(|| {
        format!(
            "reading {} (is {} an exported model?)",
            card_path.display(),
            dir.display()
        )
    })?)
    .with_context(|| format!("{} is not a nas-host model card", card_path.display()))?;
    let module = tch::CModule::load(dir.join("model.pt"))
        .with_context(|| format!("loading {}", dir.join("model.pt").display()))?;
    let [c, h, w] = card.input_shape;
    let _no_grad = tch::no_grad_guard();
    let mut predictions = Vec::new();
    for path in images {
        let image = image::ImageReader::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .with_guessed_format()
            .with_context(|| format!("reading {}", path.display()))?
            .decode()
            .with_context(|| format!("{} is not a PNG or JPEG image nas-host can read", path.display()))?;
        let original = (image.width(), image.height());
        let image = if original == (w as u32, h as u32) {
            image
        } else {
            image.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
        };
        let pixels: Vec<u8> = match c {
            1 => image.to_luma8().into_raw(),
            3 => {
                // HWC to CHW.
                let rgb = image.to_rgb8().into_raw();
                (0..3)
                    .flat_map(|ch| rgb.iter().skip(ch).step_by(3).copied().collect::<Vec<_>>())
                    .collect()
            }
            other => anyhow::bail!(
                "{} expects {other} channels; only 1 (grey) or 3 (RGB) are supported",
                card_path.display()
            ),
        };
        let x = Tensor::from_slice(&pixels)
            .view([1, c as i64, h as i64, w as i64])
            .to_kind(Kind::Float)
            * card.normalization.scale;
        let mean = Tensor::from_slice(&card.normalization.mean)
            .view([1, c as i64, 1, 1])
            .to_kind(Kind::Float);
        let std = Tensor::from_slice(&card.normalization.std)
            .view([1, c as i64, 1, 1])
            .to_kind(Kind::Float);
        let logits = module.forward_ts(&[(x - mean) / std]).context("running the model")?;
        let probabilities = logits.softmax(-1, Kind::Double);
        let class = probabilities.argmax(-1, false).int64_value(&[0]) as usize;
        predictions.push(Prediction {
            path: path.clone(),
            class,
            name: card.classes.get(class).cloned().unwrap_or_else(|| class.to_string()),
            probability: probabilities.double_value(&[0, class as i64]),
            resized_from: (original != (w as u32, h as u32)).then_some(original),
        });
    }
    Ok(predictions)
}
