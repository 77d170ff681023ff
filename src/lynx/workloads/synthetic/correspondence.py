"""Synthetic business letters and interoffice memos with extractive questions."""

from __future__ import annotations

from lynx.workloads.synthetic import vocab
from lynx.workloads.synthetic.document import Document, join_row, labelled, wrap
from lynx.workloads.synthetic.values import Values, money, money_variants

_OPENINGS = (
    "Thank you for your letter of {ref_date} regarding {project}.",
    "I am writing to follow up on our discussion of {project}.",
    "As requested, I am enclosing the materials concerning {project}.",
    "This letter confirms the arrangements we made for {project}.",
)
_MEETING = (
    "We would like to meet with you on {meeting} in {place} to review the results.",
    "A meeting has been scheduled for {meeting} at our offices in {place}.",
    "Our team will be available on {meeting} in {place} to discuss the next steps.",
)
_BUDGET = (
    "The proposed budget for the work is {budget}, covering {count} participants.",
    "We have approved funding of {budget} for the first phase, which involves {count} sites.",
    "The estimated cost of {budget} includes materials for {count} test panels.",
)
_CLOSINGS = ("Sincerely,", "Very truly yours,", "Best regards,", "Yours sincerely,", "Respectfully,")


def letter(v: Values) -> Document:
    """A business letter: letterhead, date, inside address, body, signature block, cc."""
    r, doc = v.rng, Document("letter")
    sender, recipient, cc = v.people(3)
    s_company, r_company = v.company(), v.company()
    s_street, s_city = v.address()
    r_street, r_city = v.address()
    date, ref_date, meeting = v.date(), v.date(), v.date()
    project, place = r.choice(vocab.PROJECTS), r.choice(vocab.CITIES)[0]
    budget, count = money(v.amount(1_000, 250_000)), str(r.randint(3, 400))
    salutation = f"Dear {recipient.formal}" if r.random() < 0.7 else f"Dear {recipient.first}"
    doc.add(s_company.upper(), join_row(s_street, s_city), date)
    doc.add(f"{recipient.honorific} {recipient.name}", recipient.title, r_company, r_street, r_city)
    doc.add(salutation + r.choice((":", ",")))
    fmt = dict(ref_date=ref_date, project=project, meeting=meeting, place=place, budget=budget, count=count)
    body = " ".join(r.choice(group).format(**fmt) for group in (_OPENINGS, _MEETING, _BUDGET))
    body += " " + r.choice(("Please let me know if you have any questions.", "I look forward to hearing from you.", ""))
    doc.add(*wrap(body, r.randint(55, 90), keep=(ref_date, meeting, budget, project, place)))
    doc.add(r.choice(_CLOSINGS), sender.name, sender.title, s_company)
    doc.add(f"cc: {cc.name}")

    ask = doc.ask
    ask(
        r,
        (
            "What is the date of the letter?",
            "When was the letter written?",
            "What date is mentioned at the top of the letter?",
        ),
        [date],
        "date",
    )
    ask(
        r,
        ("To whom is the letter addressed?", "Who is the recipient of the letter?"),
        recipient.name_variants(True),
        "recipient",
    )
    ask(
        r,
        ("What is the designation of {name}?", "What is the title of {name}?"),
        [recipient.title],
        "recipient_title",
        name=recipient.name,
    )
    ask(
        r,
        ("Who signed the letter?", "Who is the sender of the letter?", "Who wrote this letter?"),
        [sender.name],
        "sender",
    )
    ask(
        r,
        ("What is the designation of {name}?", "What position does {name} hold?"),
        [sender.title],
        "sender_title",
        name=sender.name,
    )
    ask(
        r,
        ("Which company is the letter addressed to?", "What is the name of the recipient's company?"),
        [r_company],
        "recipient_company",
    )
    ask(r, ("What is the salutation of the letter?", "How does the letter begin?"), [salutation], "salutation")
    ask(r, ("Who is copied on the letter?", "Who is in cc?"), [cc.name], "cc")
    ask(r, ("When is the meeting?", "On what date is the meeting?"), [meeting], "meeting_date")
    ask(r, ("Where will the meeting take place?", "In which city is the meeting?"), [place], "meeting_place")
    ask(
        r,
        ("What is the budget mentioned in the letter?", "How much funding is mentioned?"),
        money_variants_from(budget),
        "budget",
    )
    return doc


def memo(v: Values) -> Document:
    """An interoffice memorandum: TO/FROM/CC/DATE/SUBJECT header and a short body."""
    r, doc = v.rng, Document("memo")
    to, frm, cc = v.people(3)
    company, dept = v.company(), r.choice(vocab.DEPARTMENTS)
    date, deadline = v.date(), v.date()
    subject, room = r.choice(vocab.SUBJECTS), f"{r.choice(('Room', 'Conference Room', 'Suite'))} {r.randint(100, 999)}"
    doc.add(company.upper(), r.choice(("MEMORANDUM", "INTEROFFICE MEMORANDUM", "Memo", "INTER-OFFICE CORRESPONDENCE")))
    doc.add(labelled(r, ("TO:", "To:"), f"{to.name}, {dept}"), labelled(r, ("FROM:", "From:"), frm.name))
    doc.add(labelled(r, ("CC:", "cc:", "Copy:"), cc.name), labelled(r, ("DATE:", "Date:"), date))
    doc.add(labelled(r, ("SUBJECT:", "RE:", "Subject:"), subject))
    body = (
        f"Please review the attached material on {subject[0].lower() + subject[1:]} and send your comments "
        f"by {deadline}. We will discuss the matter in {room}. "
        + r.choice(
            (
                "Contact me if anything is unclear.",
                "Thank you for your cooperation.",
                "This information is confidential.",
            )
        )
    )
    doc.add(*wrap(body, r.randint(55, 90), keep=(deadline, room)))
    doc.add(frm.first[0] + frm.last[0] + "/" + r.choice(("jb", "mk", "sd", "lr")))

    ask = doc.ask
    ask(r, ("To whom is the memo addressed?", "Who is the memo to?"), [to.name], "to")
    ask(r, ("Who is the memo from?", "Who sent the memo?", "From whom is this memorandum?"), [frm.name], "from")
    ask(r, ("What is the date of the memo?", "When was the memo written?"), [date], "date")
    ask(r, ("What is the subject of the memo?", "What is the memo about?"), [subject], "subject")
    ask(r, ("Who is copied on the memo?", "Who is in cc?"), [cc.name], "cc")
    ask(
        r,
        ("Which department does {name} belong to?", "What department is mentioned with {name}?"),
        [dept],
        "department",
        name=to.name,
    )
    ask(r, ("By when should comments be sent?", "What is the deadline for comments?"), [deadline], "deadline")
    ask(r, ("Where will the matter be discussed?", "Which room is mentioned?"), [room], "room")
    ask(r, ("Which company's memo is this?", "What company name is at the top?"), [company], "company")
    return doc


def money_variants_from(rendered: str) -> list[str]:
    """Variants of an amount already rendered with :func:`money` (``"$1,250.00"``)."""
    return money_variants(float(rendered.lstrip("$").replace(",", "")))
