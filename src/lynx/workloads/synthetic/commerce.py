"""Synthetic invoices and receipts with extractive questions."""

from __future__ import annotations

from lynx.workloads.synthetic import vocab
from lynx.workloads.synthetic.document import Document, join_row, labelled
from lynx.workloads.synthetic.values import Values, code_variants, money, money_variants


def invoice(v: Values) -> Document:
    """An invoice: letterhead, numbers and dates, bill-to block, line items and totals."""
    r, doc = v.rng, Document("invoice")
    seller, buyer, contact = v.company(), v.company(), v.person()
    street, city = v.address()
    b_street, b_city = v.address()
    number = v.code(r.choice(("INV-", "IN-", "A-", "")), r.randint(4, 6))
    issued, due, phone = v.date((1970, 2024)), v.date((1970, 2024)), v.phone()
    doc.add(
        seller.upper() if r.random() < 0.5 else seller,
        street,
        city,
        labelled(r, ("Phone:", "Tel.", "Telephone:"), phone),
    )
    doc.add(r.choice(("INVOICE", "Invoice", "TAX INVOICE", "COMMERCIAL INVOICE")))
    doc.add(
        join_row(
            labelled(r, ("Invoice No:", "Invoice Number:", "Invoice #"), number),
            labelled(r, ("Date:", "Invoice Date:"), issued),
        )
    )
    doc.add(labelled(r, ("Due Date:", "Payment Due:", "Due:"), due))
    doc.add(labelled(r, ("Bill To:", "Sold To:", "Customer:"), buyer), f"Attn: {contact.name}", b_street, b_city)
    doc.add(r.choice(("Description Qty Unit Price Amount", "Item Quantity Rate Total", "DESCRIPTION QTY PRICE AMOUNT")))
    items = r.sample(vocab.PRODUCTS, r.randint(2, 6))
    subtotal = 0.0
    rows = []
    for item in items:
        qty, unit = r.randint(1, 60), v.amount(1, 900)
        amount = round(qty * unit, 2)
        subtotal = round(subtotal + amount, 2)
        rows.append((item, qty, unit, amount))
        doc.add(join_row(item, str(qty), money(unit), money(amount)))
    rate = r.choice((5, 6, 7, 7.25, 8, 8.5, 9, 10))
    tax = round(subtotal * rate / 100, 2)
    shipping = v.amount(5, 250) if r.random() < 0.5 else 0.0
    total = round(subtotal + tax + shipping, 2)
    rate_text = f"{rate:g}%"
    doc.add(join_row("Subtotal", money(subtotal)), join_row(f"Tax ({rate_text})", money(tax)))
    if shipping:
        doc.add(join_row(r.choice(("Shipping", "Freight", "Shipping & Handling")), money(shipping)))
    doc.add(join_row(r.choice(("Total Due", "TOTAL", "Amount Due", "Balance Due")), money(total)))
    terms = r.choice(("Net 30", "Net 15", "Net 60", "Due on receipt", "2% 10 Net 30"))
    doc.add(
        f"Terms: {terms}", r.choice(("Thank you for your business.", "Please remit payment to the address above.", ""))
    )

    ask = doc.ask
    ask(
        r,
        ("What is the invoice number?", "What is the invoice no.?", "Which invoice number is given?"),
        code_variants(number),
        "invoice_number",
    )
    ask(
        r,
        ("What is the invoice date?", "When was the invoice issued?", "What is the date of the invoice?"),
        [issued],
        "invoice_date",
    )
    ask(
        r, ("What is the due date?", "When is the payment due?", "By when must the invoice be paid?"), [due], "due_date"
    )
    ask(
        r,
        ("Which company issued the invoice?", "What is the name of the company at the top of the invoice?"),
        [seller],
        "seller",
    )
    ask(
        r,
        ("To whom is the invoice billed?", "What is the name of the customer?", "Which company is billed?"),
        [buyer],
        "buyer",
    )
    ask(r, ("Who is the invoice to the attention of?", "What is the name after Attn?"), [contact.name], "attention")
    ask(
        r,
        ("What is the total amount due?", "What is the total?", "How much is the total amount?"),
        money_variants(total),
        "total",
    )
    ask(r, ("What is the subtotal?", "What is the subtotal amount?"), money_variants(subtotal), "subtotal")
    ask(r, ("What is the tax amount?", "How much tax is charged?"), money_variants(tax), "tax")
    ask(r, ("What is the tax rate?", "What percentage of tax is applied?"), [rate_text, f"{rate:g}"], "tax_rate")
    ask(r, ("What are the payment terms?", "What terms are mentioned?"), [terms], "terms")
    ask(
        r,
        ("What is the phone number of {seller}?", "What is the telephone number given?"),
        [phone],
        "phone",
        seller=seller,
    )
    ask(
        r,
        ("In which city is {seller} located?", "What city is in the address of {seller}?"),
        [city.split(",")[0]],
        "seller_city",
        seller=seller,
    )
    item, qty, unit, amount = r.choice(rows)
    ask(
        r,
        ("What is the amount for {item}?", "What is the total amount for {item}?"),
        money_variants(amount),
        "item_amount",
        item=item,
    )
    ask(
        r,
        ("What is the unit price of {item}?", "What is the price per unit for {item}?"),
        money_variants(unit),
        "item_price",
        item=item,
    )
    ask(
        r,
        ("How many units of {item} were ordered?", "What is the quantity of {item}?"),
        [str(qty)],
        "item_quantity",
        item=item,
    )
    return doc


def receipt(v: Values) -> Document:
    """A till receipt: store header, items with prices, totals and payment."""
    r, doc = v.rng, Document("receipt")
    store = f"{r.choice(vocab.COMPANY_ROOTS)} {r.choice(vocab.STORE_KINDS)}"
    street, city = v.address()
    date, phone = v.date((1995, 2024)), v.phone()
    time = f"{r.randint(7, 22):02d}:{r.randint(0, 59):02d}" + r.choice(("", f":{r.randint(0, 59):02d}"))
    cashier, trans = r.choice(vocab.FIRST_NAMES), v.code(r.choice(("", "T", "R")), r.randint(4, 7))
    symbol = r.random() < 0.5
    doc.add(store.upper(), street, city, labelled(r, ("Tel", "Phone", "TEL:"), phone))
    doc.add(
        join_row(date, time),
        join_row(
            labelled(r, ("Cashier:", "Served by:", "Operator:"), cashier),
            labelled(r, ("Trans:", "Receipt #", "Txn"), trans),
        ),
    )
    items = r.sample(vocab.GROCERIES, r.randint(3, 10))
    prices = [v.amount(0.5, 40) for _ in items]
    for item, price in zip(items, prices):
        doc.add(join_row(item.upper() if r.random() < 0.5 else item, money(price, symbol)))
    subtotal = round(sum(prices), 2)
    tax = round(subtotal * r.choice((0, 0.04, 0.0475, 0.06, 0.07, 0.0825)), 2)
    total = round(subtotal + tax, 2)
    doc.add(
        join_row("SUBTOTAL", money(subtotal, symbol)),
        join_row("TAX", money(tax, symbol)),
        join_row("TOTAL", money(total, symbol)),
    )
    card = r.choice(("VISA", "MASTERCARD", "AMEX", "DEBIT", "CASH"))
    if card == "CASH":
        tendered = float(int(total) + r.choice((1, 5, 10, 20)))
        change = round(tendered - total, 2)
        doc.add(join_row("CASH", money(tendered, symbol)), join_row("CHANGE", money(change, symbol)))
        doc.ask(
            r, ("How much change was given?", "What is the change amount?"), money_variants(change, symbol), "change"
        )
    else:
        last4 = f"{r.randint(0, 9999):04d}"
        doc.add(join_row(card, f"************{last4}", money(total, symbol)))
        doc.ask(
            r,
            ("What are the last four digits of the card?", "Which card number ending is shown?"),
            [last4],
            "card_last4",
        )
    doc.add(
        f"ITEMS SOLD: {len(items)}",
        r.choice(("THANK YOU FOR SHOPPING WITH US", "PLEASE COME AGAIN", "KEEP THIS RECEIPT")),
    )

    ask = doc.ask
    ask(r, ("What is the name of the store?", "Which store issued this receipt?"), [store], "store")
    ask(
        r,
        ("What is the total?", "What is the total amount paid?", "How much was the total?"),
        money_variants(total, symbol),
        "total",
    )
    ask(r, ("What is the subtotal?", "What is the amount before tax?"), money_variants(subtotal, symbol), "subtotal")
    ask(r, ("How much tax was charged?", "What is the tax amount?"), money_variants(tax, symbol), "tax")
    ask(r, ("What is the date on the receipt?", "On what date was the purchase made?"), [date], "date")
    ask(r, ("At what time was the purchase made?", "What time is printed on the receipt?"), [time], "time")
    ask(r, ("Who was the cashier?", "What is the name of the cashier?"), [cashier], "cashier")
    ask(r, ("What is the transaction number?", "What is the receipt number?"), [trans], "transaction")
    ask(r, ("How many items were sold?", "What is the number of items sold?"), [str(len(items))], "items_sold")
    ask(r, ("What is the payment method?", "How was the purchase paid?"), [card], "payment")
    i = r.randrange(len(items))
    ask(
        r,
        ("What is the price of {item}?", "How much did the {item} cost?"),
        money_variants(prices[i], symbol),
        "item_price",
        item=items[i].lower(),
    )
    return doc
