//! Checks on a dataset's classes and counts, and on the options, shared by folder and .npz
//! datasets; run again on a cache hit, with the options of the day.

use std::path::Path;

use crate::folder::options::FolderOptions;
use crate::report::{ClassCount, Layout};

/// Problems found from the per-class counts alone (so they are checked again on a cache hit,
/// with the options of the day).
pub(crate) fn count_problems(
    root: &Path,
    layout: Layout,
    classes: &[ClassCount],
    options: &FolderOptions,
) -> Vec<String> {
    let mut problems = options.problems();
    let limit_hint = |n: usize| format!("or lower the limit with `[dataset] min_images_per_class = {n}`");
    let class_path = |part: Option<&str>, name: &str| match (layout, part) {
        (Layout::SplitFolders, Some(p)) => root.join(p).join(name).display().to_string(),
        (Layout::SplitFolders, None) => format!(
            "{} and {}",
            root.join("train").join(name).display(),
            root.join("test").join(name).display()
        ),
        (Layout::Npz, _) => format!("{} (label {name})", root.display()),
        _ => root.join(name).display().to_string(),
    };
    if classes.len() == 1 {
        problems.push(format!(
            "only one class ('{}') in {}: a classifier needs at least two classes{}",
            classes[0].name,
            root.display(),
            match layout {
                Layout::ClassFolders => " (each class is a folder: PATH/<class>/<image>)",
                Layout::SplitFolders => " (each class is a folder: PATH/train/<class>/<image>)",
                _ => "",
            }
        ));
    }
    if classes.len() > 256 {
        problems.push(format!(
            "{} has {} classes; at most 256 are supported (labels are bytes)",
            root.display(),
            classes.len()
        ));
    }
    for c in classes {
        let total = c.train + c.test;
        match layout {
            Layout::SplitFolders | Layout::Npz => {
                let other = if layout == Layout::Npz { "y_test" } else { "test/" };
                if c.train == 0 && c.test == 0 {
                    problems.push(format!(
                        "{} has no images: add images or remove the class folder",
                        class_path(None, &c.name)
                    ));
                    continue;
                }
                if c.train == 0 {
                    problems.push(format!(
                        "class '{}' has {} test images but none in {}: add training images there{}",
                        c.name,
                        c.test,
                        class_path(Some("train"), &c.name),
                        if layout == Layout::SplitFolders {
                            ", or remove the class from test/"
                        } else {
                            ""
                        }
                    ));
                } else if c.test == 0 {
                    problems.push(format!(
                        "class '{}' has {} training images but none in {}: add test images for it{}",
                        c.name,
                        c.train,
                        if layout == Layout::Npz {
                            other.to_string()
                        } else {
                            class_path(Some("test"), &c.name)
                        },
                        if layout == Layout::SplitFolders {
                            ", or remove the class from train/"
                        } else {
                            ""
                        }
                    ));
                }
                if c.train == 0 || c.test == 0 {
                    // An empty split is the problem to fix, whatever the total.
                    continue;
                }
            }
            _ => {
                if total == 0 {
                    problems.push(format!(
                        "{} has no images: add images or remove the folder",
                        class_path(None, &c.name)
                    ));
                    continue;
                }
                if total == 1 {
                    problems.push(format!(
                        "class '{}' has 1 image ({}), too few to split into train and test: add images",
                        c.name,
                        class_path(None, &c.name)
                    ));
                    continue;
                }
            }
        }
        if total < options.min_images_per_class {
            problems.push(format!(
                "class '{}' has only {total} image(s) ({}); each class needs at least {}: add images, {}",
                c.name,
                class_path(None, &c.name),
                options.min_images_per_class,
                limit_hint(total.max(2))
            ));
        }
    }
    problems
}
