"""Numbers the rules need from free text, in English, Spanish, French, Portuguese and German: how long (days), how
old (years), how big (mm) and how hot (°C).

"6 months", "seit 3 Wochen", "hace 2 meses", "depuis deux semaines", "há 3 meses", the clinician's "6/52" (weeks)
and "3/12" (months), "since childhood" / "seit Jahren" are all read; ranges count at their upper end, because the
rules that use a duration ("non-healing for more than 4 weeks") must not be argued down by a vague history.
"""

from __future__ import annotations

import re

from assistant.pipeline.safety.text import fold

_UNIT_DAYS = {
    **dict.fromkeys(["day", "days", "d", "dia", "dias", "jour", "jours", "j", "tag", "tage", "tagen"], 1.0),
    **dict.fromkeys(["week", "weeks", "wk", "wks", "w", "semana", "semanas", "semaine", "semaines", "sem", "woche",
                     "wochen"], 7.0),
    **dict.fromkeys(["month", "months", "mo", "mos", "mth", "mths", "mes", "meses", "mois", "monat", "monate",
                     "monaten", "monats"], 30.0),
    **dict.fromkeys(["year", "years", "yr", "yrs", "y", "ano", "anos", "an", "ans", "annee", "annees", "jahr", "jahre",
                     "jahren", "jahres"], 365.0),
}
_NUMBER_WORDS = {
    **dict.fromkeys(["a", "an", "one", "un", "uno", "una", "une", "um", "uma", "ein", "eine", "einem", "einer",
                     "einen", "eins"], 1),
    **dict.fromkeys(["two", "couple", "dos", "deux", "dois", "duas", "zwei"], 2),
    **dict.fromkeys(["three", "few", "tres", "trois", "drei", "quelques", "algunos", "algunas", "alguns", "algumas",
                     "unos", "unas", "paar", "einige", "einigen"], 3),
    **dict.fromkeys(["four", "several", "cuatro", "quatre", "quatro", "vier", "varios", "varias", "plusieurs",
                     "mehrere", "mehreren"], 4),
    **dict.fromkeys(["five", "cinco", "cinq", "funf"], 5),
    **dict.fromkeys(["six", "seis", "sechs"], 6),
    **dict.fromkeys(["seven", "siete", "sept", "sete", "sieben"], 7),
    **dict.fromkeys(["eight", "ocho", "huit", "oito", "acht"], 8),
    **dict.fromkeys(["nine", "nueve", "neuf", "nove", "neun"], 9),
    **dict.fromkeys(["ten", "diez", "dix", "dez", "zehn"], 10),
    **dict.fromkeys(["twelve", "doce", "douze", "doze", "zwolf"], 12),
}
_NUMBER = r"(\d+(?:[.,]\d+)?|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + ")"
_UNIT = "(" + "|".join(sorted(_UNIT_DAYS, key=len, reverse=True)) + ")"
_DURATION = re.compile(rf"\b{_NUMBER}\s*(?:-|to|a|bis|ou|or|o)?\s*(?:\d+\s*)?[- ]?{_UNIT}\b")
_SLASH = re.compile(r"\b(\d{1,2})\s*/\s*(7|52|12)\b")  # UK clinical notation: 3/7 days, 6/52 weeks, 3/12 months
_SLASH_DAYS = {"7": 1.0, "52": 7.0, "12": 30.0}
_LONG = re.compile(r"\b(since (early )?childhood|since birth|for (many )?years|desde (la )?(infancia|ninez|nacimiento)|"
                   r"hace (muchos )?anos|depuis (l )?enfance|depuis (la )?naissance|depuis des annees|"
                   r"desde (a )?(infancia|crianca|nascenca)|ha (muitos )?anos|seit (der )?kindheit|seit geburt|"
                   r"seit jahren)\b")
_RANGE_UPPER = re.compile(rf"\b{_NUMBER}\s*(?:-|to|a|bis|ou|or|o)\s*{_NUMBER}\s*[- ]?{_UNIT}\b")


def _number(text: str) -> float:
    return float(_NUMBER_WORDS[text]) if text in _NUMBER_WORDS else float(text.replace(",", "."))


def duration_days(*texts: str | None) -> float | None:
    """The longest duration mentioned in any of ``texts``, in days; None if none is mentioned."""
    found: list[float] = []
    for raw in texts:
        text = fold(raw or "")
        for number, unit in _DURATION.findall(text):
            found.append(_number(number) * _UNIT_DAYS[unit])
        for _, upper, unit in _RANGE_UPPER.findall(text):
            found.append(_number(upper) * _UNIT_DAYS[unit])
        found += [float(n) * _SLASH_DAYS[d] for n, d in _SLASH.findall(text)]
        if _LONG.search(text):
            found.append(3650.0)
    return max(found) if found else None


_AGE = re.compile(r"\b(?:(\d{1,3})\s*[- ]?\s*(?:years?[- ]old|yo|y o|jahre alt|jahrige[rn]?|jahriger|anos de idade|"
                  r"anos de edad|ans)\b|(?:aged|edad|idade|alter|age)\s*:?\s*(\d{1,3})\b|"
                  r"(?:agee?\s*de|de|tiene|tem|ist)\s*(\d{1,3})\s*(?:anos|ans|jahre)\b)")
# words before a number that make it a duration, not an age ("hace 2 años", "depuis 2 ans", "más de 2 años")
_NOT_AGE = re.compile(r"\b(hace|mas|menos|depuis|il y a|pendant|ha|seit|vor|for|since|desde|durante|over|about|"
                      r"environ|etwa|cerca|unos|unas)\s*(de\s*)?$")


def age_years(*texts: str | None) -> int | None:
    """An age written in the text ("60-year-old", "mujer de 45 años", "72 ans", "78 Jahre alt", "tem 50 anos").

    Only explicit age phrasings count: "años"/"ans" after "hace", "depuis" or "más de" are durations.
    """
    for raw in texts:
        text = fold(raw or "")
        for match in _AGE.finditer(text):
            value = match.group(1) or match.group(2) or match.group(3)
            if value and not _NOT_AGE.search(text[:match.start()]) and 0 <= int(value) <= 120:
                return int(value)
    return None


_SIZE = re.compile(r"\b(\d+(?:[.,]\d+)?)\s*(?:(?:x|by)\s*(\d+(?:[.,]\d+)?)\s*)?(mm|cm)\b")


def size_mm(*texts: str | None) -> float | None:
    """The largest lesion size written as mm or cm ("8 mm", "1.5 cm", "8 x 6 mm")."""
    found = []
    for raw in texts:
        for first, second, unit in _SIZE.findall(fold(raw or "")):
            scale = 10.0 if unit == "cm" else 1.0
            found += [_number(v) * scale for v in (first, second) if v]
    return max(found) if found else None


_TEMPERATURE = re.compile(r"\b(3[5-9]|4[0-3])(?:[.,](\d))?\s*(?:°|º|degrees?|grad|grados|graus|degres)?\s*c\b|"
                          r"\b(?:temp|temperature|temperatura|temperatur)\s*(?:of|de|von|:)?\s*(3[5-9]|4[0-3])(?:[.,](\d))?")


def temperature_c(*texts: str | None) -> float | None:
    """The highest body temperature written in °C ("39.2 C", "38,5 °C", "temperatura de 39")."""
    found = []
    for raw in texts:
        for a, a_dec, b, b_dec in _TEMPERATURE.findall(fold(raw or "")):
            whole, dec = (a, a_dec) if a else (b, b_dec)
            found.append(float(f"{whole}.{dec or 0}"))
    return max(found) if found else None
