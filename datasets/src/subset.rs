//! Stratified, seeded subsets of a split (`[train] train_subset`).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Split;

impl Split {
    /// The order [`Split::stratified_subset`] takes images in: each class's indices shuffled
    /// (seeded), then interleaved so that every prefix keeps the class proportions (each class
    /// within one image of its exact share). Only the first `n` are computed.
    pub fn stratified_order(&self, n: usize, seed: u64) -> Vec<usize> {
        let mut groups: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
        for (i, &label) in self.labels.iter().enumerate() {
            groups.entry(label).or_default().push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
        for g in &mut groups {
            g.shuffle(&mut rng);
        }
        let total = self.len() as i128;
        let sizes: Vec<i128> = groups.iter().map(|g| g.len() as i128).collect();
        let mut taken = vec![0usize; groups.len()];
        let n = n.min(self.len());
        let mut order = Vec::with_capacity(n);
        for t in 1..=n as i128 {
            // The class furthest behind its exact share t·size/total (ties: the lower label).
            let (c, _) = sizes
                .iter()
                .enumerate()
                .filter(|&(c, &size)| (taken[c] as i128) < size)
                .map(|(c, &size)| (c, t * size - taken[c] as i128 * total))
                .fold(
                    (usize::MAX, i128::MIN),
                    |best, cur| if cur.1 > best.1 { cur } else { best },
                );
            order.push(groups[c][taken[c]]);
            taken[c] += 1;
        }
        order
    }

    /// `n` images drawn with the class proportions of the whole split (each class within one
    /// image of its exact share), the same for the same seed. A smaller `n` gives a prefix of a
    /// larger one's images. The whole split (in its order) when `n` is at least its length.
    pub fn stratified_subset(&self, n: usize, seed: u64, image_len: usize) -> Split {
        if n >= self.len() {
            return self.clone();
        }
        let order = self.stratified_order(n, seed);
        let mut images = Vec::with_capacity(n * image_len);
        let mut labels = Vec::with_capacity(n);
        for i in order {
            images.extend_from_slice(&self.images[i * image_len..(i + 1) * image_len]);
            labels.push(self.labels[i]);
        }
        Split { images, labels }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use crate::Split;

    /// A split whose image i is the single byte i % 251 repeated, with uneven classes.
    fn split(class_sizes: &[usize], image_len: usize) -> Split {
        let mut labels = Vec::new();
        for (c, &n) in class_sizes.iter().enumerate() {
            labels.extend(std::iter::repeat_n(c as u8, n));
        }
        // Interleave the labels a bit so the split is not sorted by class.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for i in (1..labels.len()).rev() {
            let j = rng.random_range(0..=i);
            labels.swap(i, j);
        }
        let images = (0..labels.len())
            .flat_map(|i| std::iter::repeat_n((i % 251) as u8, image_len))
            .collect();
        Split { images, labels }
    }

    fn counts(labels: &[u8], classes: usize) -> Vec<usize> {
        let mut c = vec![0; classes];
        for &l in labels {
            c[l as usize] += 1;
        }
        c
    }

    #[test]
    fn proportions_stay_within_one_image_of_exact_at_every_size() {
        for sizes in [
            vec![500, 300, 200],
            vec![7, 93],
            vec![1, 1, 50, 3, 11],
            vec![10, 10, 10, 10],
        ] {
            let s = split(&sizes, 2);
            let total: usize = sizes.iter().sum();
            let order = s.stratified_order(total, 42);
            assert_eq!(order.len(), total);
            let mut taken = vec![0usize; sizes.len()];
            for (t, &i) in order.iter().enumerate() {
                taken[s.labels[i] as usize] += 1;
                for (c, &size) in sizes.iter().enumerate() {
                    let exact = (t + 1) as f64 * size as f64 / total as f64;
                    assert!(
                        (taken[c] as f64 - exact).abs() <= 1.0,
                        "sizes {sizes:?}, n {}: class {c} has {} for exact {exact}",
                        t + 1,
                        taken[c]
                    );
                }
            }
            // Every image exactly once.
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..total).collect::<Vec<_>>());
        }
    }

    #[test]
    fn subset_keeps_class_proportions_and_images() {
        let s = split(&[600, 300, 100], 3);
        let sub = s.stratified_subset(100, 7, 3);
        assert_eq!(sub.len(), 100);
        assert_eq!(sub.images.len(), 300);
        assert_eq!(counts(&sub.labels, 3), vec![60, 30, 10]);
        // Each image travels with its label.
        for (k, &label) in sub.labels.iter().enumerate() {
            let byte = sub.images[k * 3];
            let i = (0..s.len())
                .find(|&i| s.images[i * 3] == byte && s.labels[i] == label)
                .expect("an image of the split");
            assert_eq!(s.labels[i], label);
        }
    }

    #[test]
    fn same_seed_same_subset_other_seed_other_subset_and_prefix_stable() {
        let s = split(&[400, 250, 350], 4);
        let a = s.stratified_subset(120, 3, 4);
        assert_eq!(a, s.stratified_subset(120, 3, 4));
        assert_ne!(a, s.stratified_subset(120, 4, 4));
        let bigger = s.stratified_subset(300, 3, 4);
        assert_eq!(&bigger.labels[..120], &a.labels[..]);
        assert_eq!(&bigger.images[..120 * 4], &a.images[..]);
        assert_eq!(s.stratified_subset(5000, 3, 4), s);
        assert!(s.stratified_subset(0, 3, 4).is_empty());
    }
}
