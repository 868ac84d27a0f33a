//! Readers, corrupt input, downloads (against a server on 127.0.0.1) and the synthetic dataset.

use std::io::Write;
use std::path::{Path, PathBuf};

use nas_datasets::{
    download_verified, load, Checksum, DataError, DataSource, DatasetName, RemoteFile, SyntheticOptions,
};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(count: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x803u32, count, 28, 28] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend(std::iter::repeat_n(7u8, count as usize * 784));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x801u32, labels.len() as u32] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(labels);
    b
}

fn source(dir: &Path) -> DataSource {
    DataSource {
        data_dir: dir.to_path_buf(),
        download: false,
        mirror: None,
    }
}

/// Writes all four MNIST files; `tweak` may replace one file's bytes.
fn write_mnist(dir: &Path, tweak: impl Fn(&str, Vec<u8>) -> Vec<u8>) -> PathBuf {
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let files = [
        ("train-images-idx3-ubyte", idx_images(4)),
        ("train-labels-idx1-ubyte", idx_labels(&[0, 1, 2, 3])),
        ("t10k-images-idx3-ubyte", idx_images(2)),
        ("t10k-labels-idx1-ubyte", idx_labels(&[1, 2])),
    ];
    for (name, bytes) in files {
        std::fs::write(mnist.join(format!("{name}.gz")), gz(&tweak(name, bytes))).unwrap();
    }
    mnist
}

fn mnist_error(tweak: impl Fn(&str, Vec<u8>) -> Vec<u8>) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path(), tweak);
    let err = load(DatasetName::Mnist3, &source(dir.path())).unwrap_err();
    err.to_string()
}

#[test]
fn mnist_files_made_here_fail_the_official_checksum_by_name() {
    let message = mnist_error(|_, b| b);
    assert!(
        message.contains("train-images-idx3-ubyte.gz") && message.contains("checksum"),
        "{message}"
    );
}

#[test]
fn mnist_corrupt_inputs_are_clear_errors() {
    use nas_datasets::__test_parse_mnist as parse;
    let p = Path::new("x-images");
    let l = Path::new("x-labels");
    let ok = parse(p, &idx_images(2), l, &idx_labels(&[0, 9])).unwrap();
    assert_eq!(ok.labels, vec![0, 9]);
    assert_eq!(ok.images.len(), 2 * 784);

    let mut bad_magic = idx_images(2);
    bad_magic[3] = 0x99;
    assert!(parse(p, &bad_magic, l, &idx_labels(&[0, 1]))
        .unwrap_err()
        .to_string()
        .contains("wrong magic"));
    let mut truncated = idx_images(2);
    truncated.truncate(100);
    let e = parse(p, &truncated, l, &idx_labels(&[0, 1])).unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("x-images"), "{e}");
    let e = parse(p, &idx_images(2), l, &idx_labels(&[0, 1, 2]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 labels for 2 images"), "{e}");
    let e = parse(p, &idx_images(2), l, &idx_labels(&[0, 12]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 12") && e.contains("x-labels"), "{e}");
    assert!(parse(p, &[0, 0], l, &idx_labels(&[0]))
        .unwrap_err()
        .to_string()
        .contains("shorter than its header"));
}

#[test]
fn mnist_not_gzip_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = write_mnist(dir.path(), |_, b| b);
    std::fs::write(mnist.join("train-images-idx3-ubyte.gz"), b"not gzip at all").unwrap();
    let err = load(DatasetName::Mnist, &source(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::Corrupt { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("train-images-idx3-ubyte.gz") && message.contains("not a valid gzip"),
        "{message}"
    );
}

#[test]
fn missing_files_offline_name_each_file_and_where_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let message = load(DatasetName::Mnist3, &source(dir.path())).unwrap_err().to_string();
    assert!(message.contains("mnist/train-images-idx3-ubyte.gz"), "{message}");
    assert!(message.contains("t10k-labels-idx1-ubyte.gz"), "{message}");
    assert!(message.contains("NAS_DATA_DIR"), "{message}");
    let message = load(DatasetName::Cifar5, &source(dir.path())).unwrap_err().to_string();
    assert!(
        message.contains("cifar-10-batches-bin/data_batch_1.bin") && message.contains("cifar-10-binary.tar.gz"),
        "{message}"
    );
}

fn cifar_record(label: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend(std::iter::repeat_n(label.wrapping_mul(20), 3072));
    r
}

fn write_cifar(dir: &Path, bad_file: Option<(&str, Vec<u8>)>) {
    let c = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&c).unwrap();
    let batch: Vec<u8> = (0..10_000).flat_map(|i| cifar_record((i % 10) as u8)).collect();
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ] {
        let bytes = match &bad_file {
            Some((bad, bytes)) if *bad == name => bytes.clone(),
            _ => batch.clone(),
        };
        std::fs::write(c.join(name), bytes).unwrap();
    }
}

#[test]
fn cifar5_keeps_the_first_five_classes() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), None);
    let d = load(DatasetName::Cifar5, &source(dir.path())).unwrap();
    assert_eq!((d.train.len(), d.test.len(), d.num_classes), (25_000, 5_000, 5));
    assert!(d.train.labels.iter().all(|&l| l < 5));
    assert_eq!(d.train.images.len(), 25_000 * 3072);
    // Channel-major pixels follow their label.
    assert_eq!(d.train.images[3072], 20);
    let d = load(DatasetName::Cifar10, &source(dir.path())).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (50_000, 10_000));
}

#[test]
fn cifar_corrupt_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), Some(("data_batch_3.bin", vec![0u8; 3073 * 10_000 - 5])));
    let e = load(DatasetName::Cifar10, &source(dir.path())).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin") && e.contains("truncated"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), Some(("test_batch.bin", vec![0u8; 3073 * 9_999])));
    let e = load(DatasetName::Cifar10, &source(dir.path())).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("9999 records"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let mut bad: Vec<u8> = (0..10_000).flat_map(|_| cifar_record(1)).collect();
    bad[3073 * 17] = 42;
    write_cifar(dir.path(), Some(("data_batch_1.bin", bad)));
    let e = load(DatasetName::Cifar10, &source(dir.path())).unwrap_err().to_string();
    assert!(
        e.contains("label 42 in record 17") && e.contains("data_batch_1.bin"),
        "{e}"
    );
}

/// Serves `files` on 127.0.0.1 for at most `requests` requests; returns the base URL.
fn serve(files: Vec<(String, Vec<u8>)>, requests: usize) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok(Some(request)) = server.recv_timeout(std::time::Duration::from_secs(20)) else {
                return;
            };
            let name = request.url().trim_start_matches('/').to_string();
            let response = match files.iter().find(|(n, _)| *n == name) {
                Some((_, bytes)) => tiny_http::Response::from_data(bytes.clone()).with_status_code(200),
                None => tiny_http::Response::from_data(b"no".to_vec()).with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    base
}

#[test]
fn download_is_verified_before_it_lands() {
    let payload = b"hello dataset".to_vec();
    let good_md5 = format!("{:x}", md5::compute(&payload));
    let base = serve(vec![("f.bin".into(), payload.clone())], 3);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sub/f.bin");

    let wrong = RemoteFile {
        name: "f.bin".into(),
        base_urls: vec![],
        checksum: Checksum::Md5("00000000000000000000000000000000".into()),
    };
    let e = download_verified(&wrong, &dest, Some(&base)).unwrap_err();
    assert!(e.contains("checksum") && e.contains("f.bin"), "{e}");
    assert!(!dest.exists(), "a file failing its checksum must not land");

    let missing = RemoteFile {
        name: "nope.bin".into(),
        base_urls: vec![],
        checksum: Checksum::Md5(good_md5.clone()),
    };
    let e = download_verified(&missing, &dest, Some(&base)).unwrap_err();
    assert!(e.contains("nope.bin") && e.contains("404"), "{e}");

    let right = RemoteFile {
        name: "f.bin".into(),
        base_urls: vec![],
        checksum: Checksum::Md5(good_md5),
    };
    download_verified(&right, &dest, Some(&base)).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), payload);
}

#[test]
fn missing_mnist_is_downloaded_from_the_mirror_and_checked() {
    // The mirror serves files that are not the official ones: the download path runs, and the
    // official checksum refuses them, naming the file.
    let files = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    .map(|n| (format!("{n}.gz"), gz(b"fake")))
    .to_vec();
    let base = serve(files, 2);
    let dir = tempfile::tempdir().unwrap();
    let src = DataSource {
        data_dir: dir.path().to_path_buf(),
        download: true,
        mirror: Some(base.clone()),
    };
    let e = load(DatasetName::Mnist3, &src).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{base}/train-images-idx3-ubyte.gz")) && e.contains("checksum"),
        "{e}"
    );
    assert!(!dir.path().join("mnist/train-images-idx3-ubyte.gz").exists());
}

#[test]
fn synthetic_dataset_is_seeded_and_balanced() {
    let a = nas_datasets::generate_synthetic(&SyntheticOptions {
        train: 30,
        test: 9,
        seed: 1,
    });
    let b = nas_datasets::generate_synthetic(&SyntheticOptions {
        train: 30,
        test: 9,
        seed: 1,
    });
    let c = nas_datasets::generate_synthetic(&SyntheticOptions {
        train: 30,
        test: 9,
        seed: 2,
    });
    assert_eq!(a.train.images, b.train.images);
    assert_ne!(a.train.images, c.train.images);
    assert_eq!(a.train.labels.iter().filter(|&&l| l == 2).count(), 10);
    assert_eq!(a.train.images.len(), 30 * 28 * 28);
}

#[test]
fn dataset_names_parse() {
    assert_eq!("CIFAR5".parse::<DatasetName>().unwrap(), DatasetName::Cifar5);
    assert!("imagenet".parse::<DatasetName>().unwrap_err().contains("mnist3"));
}
