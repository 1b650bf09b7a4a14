//! Chinese names for synthetic residents and doctors: surnames weighted by
//! their share of the population, given names by sex, and the plausible typos
//! (a homophone written for the intended character) that person linking must
//! survive.
//!
//! The tables are the name lists of `schemas/reference/` (from Faker, MIT),
//! compiled in, so a generated name is common and never a real person's
//! record.

use std::sync::OnceLock;

use rhip_core::Sex;

use crate::rng::Rng;

/// `rank,surname,percent`.
const SURNAMES_CSV: &str = include_str!("../../../schemas/reference/surnames_zh_cn.csv");
/// `given_name,sex`.
const GIVEN_NAMES_CSV: &str = include_str!("../../../schemas/reference/given_names_zh_cn.csv");

/// Characters clerks commonly write for one another (same or near sound), for
/// typos that a human would make at a registration desk.
const HOMOPHONES: [(char, char); 40] = [
    ('伟', '玮'),
    ('敏', '民'),
    ('静', '晶'),
    ('丽', '莉'),
    ('英', '瑛'),
    ('华', '桦'),
    ('军', '君'),
    ('杰', '洁'),
    ('芳', '方'),
    ('明', '铭'),
    ('磊', '雷'),
    ('洋', '阳'),
    ('勇', '永'),
    ('涛', '韬'),
    ('超', '朝'),
    ('平', '萍'),
    ('辉', '晖'),
    ('鹏', '朋'),
    ('飞', '菲'),
    ('波', '博'),
    ('斌', '彬'),
    ('宇', '雨'),
    ('浩', '昊'),
    ('凯', '恺'),
    ('健', '建'),
    ('俊', '骏'),
    ('帆', '凡'),
    ('旭', '煦'),
    ('宁', '凝'),
    ('龙', '隆'),
    ('红', '宏'),
    ('兰', '岚'),
    ('梅', '玫'),
    ('珍', '贞'),
    ('燕', '艳'),
    ('娟', '涓'),
    ('霞', '侠'),
    ('婷', '亭'),
    ('秀', '绣'),
    ('玉', '钰'),
];

/// The parsed name tables.
struct Tables {
    /// Surnames with their cumulative weight in thousandths of a percent.
    surnames: Vec<(&'static str, u32)>,
    /// The sum of all surname weights.
    surname_total: u32,
    /// Given names for men.
    male: Vec<&'static str>,
    /// Given names for women.
    female: Vec<&'static str>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut surnames = Vec::new();
        let mut total = 0u32;
        for line in SURNAMES_CSV.lines().skip(1) {
            let mut fields = line.split(',');
            let (Some(_rank), Some(surname), Some(percent)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            // Percent with three decimals, kept as an integer weight.
            let weight = percent.trim().parse::<f64>().map_or(0, |p| (p * 1000.0).round() as u32).max(1);
            total += weight;
            surnames.push((surname.trim(), total));
        }
        let mut male = Vec::new();
        let mut female = Vec::new();
        for line in GIVEN_NAMES_CSV.lines().skip(1) {
            match line.split_once(',') {
                Some((name, "male")) => male.push(name.trim()),
                Some((name, "female")) => female.push(name.trim()),
                _ => {}
            }
        }
        Tables { surnames, surname_total: total, male, female }
    })
}

/// A surname drawn by its share of the population (王, 李 and 张 are each
/// about 7 %).
pub(crate) fn surname(rng: &mut Rng) -> &'static str {
    let tables = tables();
    let pick = u32::try_from(rng.below(u64::from(tables.surname_total))).unwrap_or(0);
    let position = tables.surnames.partition_point(|(_, cumulative)| *cumulative <= pick);
    tables.surnames.get(position).or(tables.surnames.last()).map_or("王", |(name, _)| name)
}

/// A given name for the sex: one entry of the list, or two one-character
/// entries joined (most Chinese given names have two characters).
pub(crate) fn given_name(rng: &mut Rng, sex: Sex) -> String {
    let tables = tables();
    let list = if sex == Sex::Female { &tables.female } else { &tables.male };
    let first = rng.pick(list).copied().unwrap_or("明");
    if first.chars().count() == 1 && rng.chance(0.55) {
        let singles: Vec<&str> = list.iter().copied().filter(|name| name.chars().count() == 1).collect();
        let second = rng.pick(&singles).copied().unwrap_or("华");
        if second != first {
            return format!("{first}{second}");
        }
    }
    first.to_owned()
}

/// The name with one character of the given name miswritten: a homophone
/// when one is known, else the given name's characters swapped, else a
/// character of another given name. The surname is never changed (clerks
/// rarely get it wrong, and the linking rules would then see another person
/// only by design).
pub(crate) fn typo(rng: &mut Rng, surname: &str, given: &str) -> String {
    let characters: Vec<char> = given.chars().collect();
    let replaceable: Vec<usize> = characters
        .iter()
        .enumerate()
        .filter(|(_, c)| HOMOPHONES.iter().any(|(a, b)| a == *c || b == *c))
        .map(|(index, _)| index)
        .collect();
    let mut changed = characters.clone();
    if let Some(&position) = rng.pick(&replaceable) {
        if let Some(slot) = changed.get_mut(position) {
            let current = *slot;
            *slot = HOMOPHONES
                .iter()
                .find_map(|(a, b)| {
                    if *a == current {
                        Some(*b)
                    } else if *b == current {
                        Some(*a)
                    } else {
                        None
                    }
                })
                .unwrap_or(current);
        }
    } else if characters.len() == 2 && characters.first() != characters.last() {
        changed.reverse();
    } else {
        let replacement = if characters.first() == Some(&'国') { '华' } else { '国' };
        if let Some(last) = changed.last_mut() {
            *last = replacement;
        }
    }
    format!("{surname}{}", changed.into_iter().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn surnames_follow_their_weights() {
        let mut rng = Rng::new(3, Stream::Block, 0);
        let draws = 20_000;
        let wang = (0..draws).filter(|_| surname(&mut rng) == "王").count();
        // 王 is 7.17 % of 97.089 % listed.
        let share = wang as f64 / f64::from(draws);
        assert!((0.06..0.09).contains(&share), "王 share {share}");
        assert!(tables().surnames.len() >= 399);
    }

    #[test]
    fn given_names_come_from_the_list_of_the_sex() {
        let mut rng = Rng::new(4, Stream::Block, 0);
        for _ in 0..500 {
            let name = given_name(&mut rng, Sex::Female);
            assert!((1..=2).contains(&name.chars().count()), "{name}");
        }
    }

    #[test]
    fn typos_change_exactly_the_given_name() {
        let mut rng = Rng::new(5, Stream::Block, 0);
        for (given, expected) in [("伟", "王玮"), ("秀英", ""), ("国", "王华"), ("小红", "王小宏")] {
            let written = typo(&mut rng, "王", given);
            assert_ne!(written, format!("王{given}"));
            assert!(written.starts_with('王'));
            assert_eq!(written.chars().count(), 1 + given.chars().count());
            if !expected.is_empty() {
                assert_eq!(written, expected);
            }
        }
        // Without a homophone, two characters are swapped.
        assert_eq!(typo(&mut rng, "李", "子墨"), "李墨子");
    }
}
