"""The Latin-letter scan the browser tests run on every page finds what it should."""

from tests.gateway.latin import latin_words


def test_codes_numbers_addresses_and_format_names_pass() -> None:
    text = (
        "主体 某某有限公司（91120116MA05JBXQ06） 报告编号 JJJ-20261202-7QX2M4KD9A 核验码 ABCD-EFGH-JKMN-PQRS-T "
        "2026年12月2日 15:30 下载 PDF 下载 XLSX 访问 https://credit.example.cn/verify 第 3 页 "
        "校验码错误：应为 'H'，实际为 'X' 证明材料（PDF、PNG 或 JPEG，不超过 4 MB）"
    )
    assert latin_words(text) == []


def test_english_words_and_internal_identifiers_are_found() -> None:
    assert latin_words("签发机构 jjj-gateway 报告规范 tianjin-2023（第 1 版）") == ["jjj-gateway", "tianjin-2023"]
    assert latin_words("授权给 bank 的请求 (invalid character)") == ["bank", "invalid", "character"]
    assert latin_words("错误：PdfStreamError: stream ended") == ["PdfStreamError", "stream", "ended"]
    assert latin_words("应为 'H'，实际为 'x'") == ["x"]  # a code's characters are capitals
