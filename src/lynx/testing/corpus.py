"""The small English corpus the test tokenizer is trained on.

It lives in a Python string (not a package data file) so it ships in every install of
Lynx without packaging configuration. The text is varied on purpose: document-QA words
(invoice, total, date, chart, receipt, table), numbers, currency, dates, punctuation,
code-ish fragments and plain prose, so that a BPE trained on it learns merges for the
kinds of prompts the tests and benchmarks send. It is ASCII only, so every string built
from its characters round-trips through the byte-level tokenizer.
"""

from __future__ import annotations

CORPUS: str = """\
INVOICE No. 2024-0117
Date: March 14, 2024        Due date: April 13, 2024
Bill to: Northwind Traders Ltd., 42 Harbour Street, Leeds LS1 4DX
Description                      Qty    Unit price     Amount
Office chairs (black)              4       $129.00    $516.00
Standing desk, oak finish          1       $489.50    $489.50
USB-C docking station              3        $84.99    $254.97
Subtotal: $1,260.47   Tax (8.5%): $107.14   Shipping: $25.00
TOTAL DUE: $1,392.61
Payment terms: net 30 days. Please include the invoice number with your payment.
Questions about this invoice? Call (555) 010-7788 or email billing@northwind.example.

RECEIPT - Green Leaf Cafe, 18 Market Square
2 x Cappuccino 3.20 = 6.40; 1 x Blueberry muffin 2.75; 1 x Orange juice 3.10
Total: 12.25 EUR   Paid by card ****4821   Change: 0.00
Thank you for your visit! Open Monday to Saturday, 7:00 am - 6:30 pm.

What is the total amount on the invoice? The total amount is $1,392.61.
What is the due date? The due date is April 13, 2024.
Who is the invoice addressed to? It is addressed to Northwind Traders Ltd.
How many office chairs were ordered? Four office chairs were ordered.
Question: What was the tax rate? Answer: 8.5 percent.
Question: Which item had the highest unit price? Answer: the standing desk.

Figure 3. Quarterly revenue by region, 2021-2023 (in millions of USD).
The bar chart shows revenue for North America, Europe, Asia and Latin America.
In Q4 2023, North America reached 48.2, Europe 35.7, Asia 41.9 and Latin America 12.4.
The line chart on the right plots the growth rate: it peaked at 14% in Q2 2022
and fell to 3% by the end of 2023. The y-axis is labelled "Revenue ($M)" and the
x-axis lists each quarter. Which region had the lowest value? Latin America, 12.4.
What is the difference between the highest and lowest bars? 48.2 - 12.4 = 35.8.
Table 2: Average monthly temperature (C) - Jan 4.1, Feb 5.3, Mar 8.0, Apr 11.2,
May 14.6, Jun 17.9, Jul 20.3, Aug 19.8, Sep 16.4, Oct 12.0, Nov 7.5, Dec 4.9.

MEMORANDUM
To: All staff      From: Human Resources      Subject: Updated leave policy
Effective from 1 July, employees may carry over up to five days of unused annual
leave into the following year. Requests must be submitted through the portal at
least two weeks in advance. Please contact your manager if you have questions.

Dear Ms. Patel,
Thank you for your letter of 3 February regarding the delayed shipment (order
#A-55821). We apologise for the inconvenience. The parcel was dispatched on
10 February and should arrive within three to five working days. A refund of
the shipping fee ($12.50) has been issued to your account.
Yours sincerely,
Daniel Okafor, Customer Service Manager

Form W-7: Application for registration. Name: Maria Gonzalez. Date of birth:
1987-09-22. Address: 1600 Elm Avenue, Apt. 5B, Springfield, IL 62704.
Phone: +1 217 555 0143. Signature: ______________  Date: ___/___/______

The history of the printing press begins in the fifteenth century, when movable
type made books cheaper and faster to produce. Within fifty years, presses were
operating in more than two hundred cities across Europe. Literacy rose, ideas
spread quickly, and scholars could compare copies of the same text for the first
time. Today, documents are scanned, parsed and searched by software that reads
pages much as a person would: it finds the title, the headings, the tables and
the small print at the bottom of the page.

A scientist measured the length of 12 leaves: 4.2, 5.1, 3.8, 6.0, 5.5, 4.9, 5.2,
4.4, 6.3, 5.0, 4.7 and 5.8 centimetres. The mean is 5.08 cm and the median is 5.05.
If x = 7 and y = 3, then x + y = 10, x - y = 4, x * y = 21 and x / y = 2.33.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!

Weather report for Tuesday: cloudy in the morning with a 40% chance of rain,
clearing in the afternoon. High of 18 degrees, low of 9. Winds from the west at
15 km/h. Sunrise 6:42, sunset 19:58. Air quality: good. UV index: 3 (moderate).

def total(items):
    return sum(item["price"] * item["qty"] for item in items)
print(total([{"price": 2.5, "qty": 4}]))  # prints 10.0
{"invoice_id": "INV-0042", "vendor": "Acme Corp", "total": 1299.99, "paid": true}

Meeting notes (Monday, 9:30 am): Attendees: Chen, Rossi, Mbeki, Larsen.
1. Budget review - marketing spend is 6% over plan; finance will send a report.
2. Product launch moved to 15 October. Design must finalise the logo by Friday.
3. Action items: Rossi to update the schedule; Chen to book the venue.
Next meeting: Thursday at 2 pm in room 301.

Bank statement, account ending 7730, period 01/05/2023 - 31/05/2023.
Opening balance 2,345.10; deposits 3,200.00; withdrawals 2,918.44;
closing balance 2,626.66. Interest earned: 1.37. Fees: none.

Nutrition facts per serving (30 g): energy 120 kcal, fat 4.5 g, of which
saturates 1.2 g, carbohydrate 18 g, sugars 6 g, fibre 2.1 g, protein 3.4 g, salt 0.3 g.

Train timetable: departs London 08:15, Reading 08:41, Swindon 09:10, Bristol 09:52.
Platform 4. Tickets: adult 54.20, child 27.10, railcard discount one third.

Shipping manifest 88-B: pallets 14, gross weight 3,412 kg, container MSKU 918273-4,
vessel "Northern Star", port of loading Rotterdam, port of discharge Montreal, ETA 27 Aug.
Customs declaration: electronics, textiles, ceramics, spare parts, frozen seafood.
Purchase order PO-77310 approved by procurement; quantity 250 units at 3.75 each.
Vendor registration, supplier code, warehouse location, delivery note, credit memo,
balance sheet, income statement, cash flow, liabilities, equity, assets, depreciation.

Patient intake form: symptoms began yesterday evening; temperature 38.1; blood
pressure 124/82; allergies: penicillin. Prescribed: ibuprofen 400 mg twice daily.
Insurance policy number, claim reference, beneficiary, premium, deductible, coverage.
Laboratory results: glucose 5.4 mmol/L, cholesterol 4.8, haemoglobin 13.9 g/dL.

Recipe: whisk three eggs with sugar, fold in flour, butter and vanilla; bake at
180 degrees for twenty-five minutes until golden. Serve warm with cream or jam.
Garden checklist: water tomatoes, prune roses, harvest lettuce, plant garlic, mulch beds.

Contract clause 7.2 - Termination. Either party may terminate this agreement by
giving ninety (90) days written notice. Confidentiality obligations survive
termination. Governing law: the laws of the State of New York. Witnesses, notary,
landlord, tenant, lease, deposit, rent, utilities, maintenance, inspection, penalty.

Museum guide: the east gallery displays paintings, sculptures and ancient pottery;
the west wing hosts photography, textiles and a library of rare manuscripts.
Tickets: adults 15, students 9, seniors 10, children under twelve free. Closed Mondays.

Football results: United 2 - 1 City; Rovers 0 - 0 Athletic; Wanderers 3 - 2 Albion.
Marathon finishing times: 2:08:41, 2:09:15, 2:11:03. Swimming, cycling, tennis, golf.

Software release notes v3.2.1: fixed a crash when opening large spreadsheets;
improved keyboard shortcuts; added dark mode; updated translations for Spanish,
German, Japanese and Portuguese. Known issue: printing landscape pages may be slow.
Error 404: page not found. Warning: disk almost full (95%). Login failed; retry?
Click "Submit", then "Download PDF". Username, password, settings, profile, logout.

Survey of 1,200 households: 62% own a car, 38% cycle weekly, 17% work remotely,
and 9% plan to move within a year. Respondents aged 18-34 were most likely to rent.
Population census, unemployment rate, inflation, exchange rate, gross domestic product.
Electricity consumption rose from 310 kWh in January to 402 kWh in August.

Astronomy club: Jupiter, Saturn, Venus and Mars are visible this week; the moon is
waxing gibbous. Bring binoculars, a telescope, warm jackets and hot chocolate.
Volcanoes, glaciers, rivers, deserts, forests, oceans, islands, mountains, valleys.
Animals: elephant, giraffe, penguin, dolphin, eagle, rabbit, tiger, squirrel, whale.
Colours: red, orange, yellow, green, blue, indigo, violet, purple, white, grey, brown.
Kitchen: kettle, toaster, fridge, oven, spoon, fork, knife, plate, bowl, cup, napkin.
Family: mother, father, sister, brother, grandmother, uncle, aunt, cousin, nephew, niece.
Verbs: calculate, compare, describe, estimate, explain, identify, measure, predict,
summarise, translate, verify, withdraw, negotiate, schedule, organise, celebrate.
Adjectives: accurate, brief, careful, delicate, enormous, familiar, generous, humble,
jealous, keen, loyal, narrow, obvious, polite, quiet, rapid, sincere, tiny, vivid.

"Where did you put the report?" she asked. "On your desk, next to the blue
folder," he replied. It was late; the office was quiet, and the printer hummed.
Children played in the park while their parents talked about school, work, food,
music, sport, travel and the price of houses in the city centre.
"""
