//! NumPy .npz datasets written on the fly in temp folders, dataset refs (names and paths) and
//! describe, and the named datasets' fingerprints.

mod common;

use std::path::PathBuf;

use common::{class_folders, error, load, opts};
use nas_datasets::{DataRef, DatasetName, FolderOptions, Layout};
use npyz::WriterBuilder;

fn write_u8(npz: &mut npyz::npz::NpzWriter<std::io::BufWriter<std::fs::File>>, name: &str, shape: &[u64], data: &[u8]) {
    let mut w = npz
        .array::<u8>(name, Default::default())
        .unwrap()
        .default_dtype()
        .shape(shape)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

fn write_i64(
    npz: &mut npyz::npz::NpzWriter<std::io::BufWriter<std::fs::File>>,
    name: &str,
    shape: &[u64],
    data: &[i64],
) {
    let mut w = npz
        .array::<i64>(name, Default::default())
        .unwrap()
        .default_dtype()
        .shape(shape)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// Image i of a split: pixel (y, x, c) = i + 10·c + y (mod 256).
fn pixels(n: usize, h: usize, w: usize, c: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        for y in 0..h {
            for _x in 0..w {
                for ch in 0..c {
                    v.push((i + 10 * ch + y) as u8);
                }
            }
        }
    }
    v
}

#[test]
fn nhwc_colour_with_column_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cifar-like.npz");
    let mut npz = npyz::npz::NpzWriter::create(&path).unwrap();
    let labels: Vec<u8> = (0..12).map(|i| (i % 3) as u8).collect();
    write_u8(&mut npz, "x_train", &[12, 4, 5, 3], &pixels(12, 4, 5, 3));
    write_u8(&mut npz, "y_train", &[12, 1], &labels);
    write_u8(&mut npz, "x_test", &[6, 4, 5, 3], &pixels(6, 4, 5, 3));
    write_u8(&mut npz, "y_test", &[6, 1], &labels[..6]);
    drop(npz);
    let loaded = load(&path, &FolderOptions::default(), None);
    let d = &loaded.dataset;
    assert_eq!((d.channels, d.height, d.width, d.num_classes), (3, 4, 5, 3));
    assert_eq!(d.class_names, ["0", "1", "2"]);
    assert_eq!(d.train.labels, labels);
    // NCHW: image 2, channel 1, row 3 = 2 + 10 + 3.
    let img = &d.train.images[2 * 60..3 * 60];
    assert_eq!(img[20 + 3 * 5], 15);
    assert_eq!(img[0], 2);
    assert_eq!(img[40], 22);
    assert_eq!(loaded.report.layout, Layout::Npz);
    assert!(loaded.report.fingerprint.is_some());
    // Grey on request.
    let grey = load(
        &path,
        &FolderOptions {
            channels: Some(1),
            ..Default::default()
        },
        None,
    );
    assert_eq!(grey.dataset.image_len(), 20);
    assert_eq!(
        DataRef::Path(path.clone())
            .describe(&FolderOptions::default(), None)
            .unwrap()
            .image_shape(),
        (3, 4, 5)
    );
}

#[test]
fn nhw_grey_with_int64_labels_and_bad_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mnist-like.npz");
    let mut npz = npyz::npz::NpzWriter::create(&path).unwrap();
    let labels: Vec<i64> = (0..10).map(|i| i % 2).collect();
    write_u8(&mut npz, "x_train", &[10, 3, 3], &pixels(10, 3, 3, 1));
    write_i64(&mut npz, "y_train", &[10], &labels);
    write_u8(&mut npz, "x_test", &[4, 3, 3], &pixels(4, 3, 3, 1));
    write_i64(&mut npz, "y_test", &[4], &labels[..4]);
    drop(npz);
    let d = load(&path, &FolderOptions::default(), None).dataset;
    assert_eq!((d.channels, d.height, d.width, d.num_classes), (1, 3, 3, 2));
    assert_eq!(d.train.images, pixels(10, 3, 3, 1));
    assert_eq!(d.test.labels, [0, 1, 0, 1]);
    let resized = load(
        &path,
        &FolderOptions {
            image_size: Some((6, 6)),
            ..Default::default()
        },
        None,
    );
    assert_eq!(resized.dataset.image_len(), 36);
    assert_eq!(resized.report.resized, 14);

    // Missing arrays and negative labels are named.
    let bad = dir.path().join("bad.npz");
    let mut npz = npyz::npz::NpzWriter::create(&bad).unwrap();
    write_u8(&mut npz, "x_train", &[2, 3, 3], &pixels(2, 3, 3, 1));
    write_i64(&mut npz, "y_train", &[2], &[0, -1]);
    drop(npz);
    let e = error(&bad, &FolderOptions::default());
    assert!(e.contains("no array x_test, y_test"), "{e}");
    let mut npz = npyz::npz::NpzWriter::create(&bad).unwrap();
    write_u8(&mut npz, "x_train", &[2, 3, 3], &pixels(2, 3, 3, 1));
    write_i64(&mut npz, "y_train", &[2], &[0, -1]);
    write_u8(&mut npz, "x_test", &[2, 3, 3], &pixels(2, 3, 3, 1));
    write_i64(&mut npz, "y_test", &[2], &[0, 1]);
    drop(npz);
    let e = error(&bad, &FolderOptions::default());
    assert!(e.contains("y_train[1] is -1"), "{e}");
}

#[test]
fn dataset_refs_parse_names_and_paths() {
    assert_eq!(
        "mnist3".parse::<DataRef>().unwrap(),
        DataRef::Named(DatasetName::Mnist3)
    );
    assert_eq!(
        "CIFAR5".parse::<DataRef>().unwrap(),
        DataRef::Named(DatasetName::Cifar5)
    );
    assert_eq!(
        "./flowers".parse::<DataRef>().unwrap(),
        DataRef::Path(PathBuf::from("./flowers"))
    );
    assert_eq!(
        "data/x.npz".parse::<DataRef>().unwrap(),
        DataRef::Path(PathBuf::from("data/x.npz"))
    );
    assert_eq!(
        "mnist.npz".parse::<DataRef>().unwrap(),
        DataRef::Path(PathBuf::from("mnist.npz"))
    );
    let e = "cifar11".parse::<DataRef>().unwrap_err();
    assert!(
        e.contains("unknown dataset 'cifar11'") && e.contains("./cifar11"),
        "{e}"
    );
    assert_eq!(DataRef::from(DatasetName::Mnist).to_string(), "mnist");
    let info = DataRef::Named(DatasetName::Cifar5).describe(&opts(), None).unwrap();
    assert_eq!((info.image_shape(), info.num_classes()), ((3, 32, 32), 5));

    // describe reads headers only when there is no cache.
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("x", 5), ("y", 5)], false, (7, 9));
    let info = DataRef::Path(dir.path().to_path_buf()).describe(&opts(), None).unwrap();
    assert_eq!(info.image_shape(), (1, 7, 9));
    assert_eq!(info.class_names, ["x", "y"]);
}

#[test]
fn named_fingerprints_are_unchanged() {
    // The fingerprint as first defined, before custom datasets.
    use sha2::{Digest, Sha256};
    let d = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    let mut hash = Sha256::new();
    hash.update(format!(
        "{}|{}x{}x{}|{}",
        "synthetic", d.channels, d.height, d.width, d.num_classes
    ));
    for split in [&d.train, &d.test] {
        hash.update((split.images.len() as u64).to_le_bytes());
        hash.update(&split.images);
        hash.update((split.labels.len() as u64).to_le_bytes());
        hash.update(&split.labels);
    }
    let old: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(d.fingerprint(), old);
}
