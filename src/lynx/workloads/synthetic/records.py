"""Synthetic fill-in forms and numeric report tables with extractive questions."""

from __future__ import annotations

from lynx.workloads.synthetic import vocab
from lynx.workloads.synthetic.document import Document, join_row, labelled
from lynx.workloads.synthetic.values import Values, money, money_variants

_FORM_TITLES = {
    "employee": ("EMPLOYEE INFORMATION FORM", "Personnel Data Sheet", "NEW HIRE FORM"),
    "expense": ("EXPENSE REIMBURSEMENT FORM", "Travel Expense Report", "EXPENSE CLAIM"),
    "request": ("SAMPLE REQUEST FORM", "Purchase Requisition", "MATERIAL REQUEST"),
}

_TABLE_THEMES = (
    # (title template, row header, row labels, column labels kind, unit, value range, decimals)
    (
        "Sales by region (in thousands of dollars)",
        "Region",
        ("Northeast", "Southeast", "Midwest", "Southwest", "West", "Central", "Pacific", "Mountain"),
        "years",
        "",
        (100, 99_000),
        0,
    ),
    (
        "Shipments by brand (millions of units)",
        "Brand",
        tuple(f"{c} {s}" for c in ("Gold", "Silver", "Blue", "Red", "Green") for s in ("Lights", "Kings", "Menthol")),
        "quarters",
        "",
        (1, 900),
        1,
    ),
    (
        "Respondents by age group (%)",
        "Age group",
        ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
        "years",
        "%",
        (1, 60),
        1,
    ),
    (
        "Analytical results per sample (mg)",
        "Sample",
        tuple(f"Sample {c}" for c in "ABCDEFGHJK"),
        "tests",
        "",
        (0, 50),
        2,
    ),
    ("Headcount by department", "Department", vocab.DEPARTMENTS, "years", "", (3, 4_000), 0),
)


def form(v: Values) -> Document:
    """A filled-in form (employee data, expense claim or material request)."""
    r = v.rng
    variant = r.choice(sorted(_FORM_TITLES))
    doc = Document("form")
    person, supervisor = v.people(2)
    company, dept = v.company(), r.choice(vocab.DEPARTMENTS)
    doc.add(company.upper(), r.choice(_FORM_TITLES[variant]))
    doc.add(
        join_row(
            labelled(r, ("Name:", "NAME", "Employee Name:"), person.name), labelled(r, ("Dept:", "Department:"), dept)
        )
    )
    doc.ask(r, ("What is the name given in the form?", "Whose name is on the form?"), [person.name], "name")
    doc.ask(r, ("Which department is mentioned in the form?", "What is the department?"), [dept], "department")
    signed = v.date((1975, 2024))
    if variant == "employee":
        emp_id, phone, start = v.code(r.choice(("E-", "EMP-", "")), 5), v.phone(), v.date((1975, 2024))
        email, status = v.email(person, company), r.choice(("Full-time", "Part-time", "Contract", "Temporary"))
        street, city = v.address()
        doc.add(
            join_row(
                labelled(r, ("Employee ID:", "ID No.", "Badge #"), emp_id),
                labelled(r, ("Start Date:", "Date of Hire:"), start),
            )
        )
        doc.add(
            labelled(r, ("Position:", "Job Title:"), person.title),
            labelled(r, ("Phone:", "Tel:"), phone),
            labelled(r, ("E-mail:", "Email:"), email),
        )
        doc.add(labelled(r, ("Home Address:", "Address:"), street), city)
        doc.add(
            "Employment status: "
            + " ".join(
                f"[{'X' if s == status else ' '}] {s}" for s in ("Full-time", "Part-time", "Contract", "Temporary")
            )
        )
        doc.ask(
            r,
            ("What is the employee ID?", "What is the ID number?"),
            [emp_id] + ([emp_id.split("-")[1]] if "-" in emp_id else []),
            "employee_id",
        )
        doc.ask(r, ("What is the start date?", "When did the employee start?"), [start], "start_date")
        doc.ask(r, ("What is the phone number?", "What is the telephone number given?"), [phone], "phone")
        doc.ask(r, ("What is the e-mail address?", "What is the email given in the form?"), [email], "email")
        doc.ask(
            r,
            ("What is the position of {name}?", "What job title is entered?"),
            [person.title],
            "position",
            name=person.name,
        )
        doc.ask(r, ("Which employment status is checked?", "What type of employment is marked?"), [status], "status")
    elif variant == "expense":
        purpose, period = r.choice(vocab.SUBJECTS), f"{v.date((1990, 2024))} - {v.date((1990, 2024))}"
        costs = {
            k: v.amount(5, 2_500)
            for k in r.sample(("Airfare", "Lodging", "Meals", "Car rental", "Mileage", "Registration fees", "Taxi"), 4)
        }
        total = round(sum(costs.values()), 2)
        doc.add(
            labelled(r, ("Purpose:", "Business Purpose:"), purpose), labelled(r, ("Period:", "Travel Dates:"), period)
        )
        doc.add(*(join_row(k, money(c)) for k, c in costs.items()))
        doc.add(join_row(r.choice(("TOTAL", "Total Claimed", "Amount Due Employee")), money(total)))
        kind = r.choice(sorted(costs))
        doc.ask(
            r,
            ("What is the total amount claimed?", "What is the total of the expenses?"),
            money_variants(total),
            "total",
        )
        doc.ask(
            r,
            ("How much was spent on {kind}?", "What is the amount for {kind}?"),
            money_variants(costs[kind]),
            "expense_item",
            kind=kind.lower(),
        )
        doc.ask(r, ("What is the purpose of the expense?", "What is the business purpose given?"), [purpose], "purpose")
    else:
        product, qty = r.choice(vocab.PRODUCTS), str(r.randint(1, 500))
        needed, ship_street, ship_city = v.date((1975, 2024)), *v.address()
        doc.add(
            join_row(labelled(r, ("Item:", "Material:", "Product:"), product), labelled(r, ("Quantity:", "Qty:"), qty))
        )
        doc.add(
            labelled(r, ("Date Needed:", "Required By:"), needed),
            labelled(r, ("Ship To:", "Deliver To:"), ship_street),
            ship_city,
        )
        doc.ask(r, ("What item is requested?", "Which material is requested?"), [product], "item")
        doc.ask(r, ("What quantity is requested?", "How many units are requested?"), [qty], "quantity")
        doc.ask(r, ("By when is the item needed?", "What is the date needed?"), [needed], "date_needed")
        doc.ask(
            r,
            ("To which city should it be shipped?", "What is the delivery city?"),
            [ship_city.split(",")[0]],
            "ship_city",
        )
    doc.add(
        join_row(
            labelled(r, ("Approved by:", "Supervisor:", "Authorized by:"), supervisor.name),
            labelled(r, ("Date:", "Signed:"), signed),
        )
    )
    doc.ask(r, ("Who approved the form?", "Who is the supervisor named on the form?"), [supervisor.name], "approver")
    doc.ask(r, ("On what date was the form signed?", "What is the date next to the approval?"), [signed], "signed_date")
    return doc


def table(v: Values) -> Document:
    """A numeric report table with a title, column headers, rows, totals and a source line."""
    r, doc = v.rng, Document("table")
    title, row_header, labels, col_kind, unit, (lo, hi), decimals = r.choice(_TABLE_THEMES)
    rows = r.sample(labels, r.randint(3, min(7, len(labels))))
    ncols = r.randint(2, 5)
    if col_kind == "years":
        start = r.randint(1960, 2020)
        cols = [str(start + i) for i in range(ncols)]
    elif col_kind == "quarters":
        year = r.randint(1970, 2023)
        cols = [f"Q{i + 1} {year}" for i in range(min(ncols, 4))]
    else:
        cols = r.sample(("Nicotine", "Tar", "Carbon monoxide", "Moisture", "Sugar", "Ash", "Nitrate"), ncols)
    cells = {(row, col): round(r.uniform(lo, hi), decimals) for row in rows for col in cols}
    fmt = f"{{:,.{decimals}f}}"
    number = f"Table {r.randint(1, 24)}"
    doc.add(v.company(), f"{number}. {title}" if r.random() < 0.7 else title)
    doc.add(join_row(row_header, *cols))
    for row in rows:
        doc.add(join_row(row, *(fmt.format(cells[row, c]) + unit for c in cols)))
    has_total = unit != "%"  # percentages of different bases do not add up
    if has_total:
        doc.add(join_row("Total", *(fmt.format(round(sum(cells[row, c] for row in rows), decimals)) for c in cols)))
    source = f"{r.choice(vocab.DEPARTMENTS)}, {v.date((1970, 2024))}"
    doc.add(f"Source: {source}")

    row, col = r.choice(rows), r.choice(cols)
    value = fmt.format(cells[row, col])
    answers = [value + unit, value] if unit else [value]
    doc.ask(
        r,
        (
            "What is the value for {row} in {col}?",
            "What is the {col} figure for {row}?",
            "What is the entry for {row} under {col}?",
        ),
        answers,
        "cell",
        row=row,
        col=col,
    )
    doc.ask(r, ("What is the title of the table?", "What does the table show?"), [title], "title")
    doc.ask(r, ("What is the source of the table?", "Which source is cited?"), [source], "source")
    if has_total:
        c = r.choice(cols)
        total = fmt.format(round(sum(cells[row, c] for row in rows), decimals))
        doc.ask(r, ("What is the total for {col}?", "What is the total in {col}?"), [total], "column_total", col=c)
    return doc
