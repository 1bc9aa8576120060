"""Writes the small PDFs the PDF extractor tests read (run through make-fixtures.sh).

Each page is drawn line by line with reportlab's canvas so that line breaks, hyphens at line
ends, font sizes, running headers/footers and columns are exactly what the tests expect.
The output is deterministic (reportlab's invariant mode), so rerunning the script rewrites
the same bytes.
"""
import os
import sys

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from reportlab import rl_config
from pypdf import PdfReader, PdfWriter

rl_config.invariant = 1
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
W, H = A4
LEFT = 72
BODY = 10
LEAD = 13  # line spacing of body text


class Page:
    """Draws text from the top of a page downwards."""

    def __init__(self, c):
        self.c = c
        self.y = H - 90

    def heading(self, text, size):
        self.y -= size * 0.6
        self.c.setFont("Helvetica-Bold", size)
        self.c.drawString(LEFT, self.y, text)
        self.y -= size * 1.4

    def lines(self, lines, x=LEFT, size=BODY):
        self.c.setFont("Helvetica", size)
        for line in lines:
            self.c.drawString(x, self.y, line)
            self.y -= LEAD
        self.y -= LEAD  # paragraph gap


def new(name, title=None):
    c = canvas.Canvas(os.path.join(OUT, name), pagesize=A4, invariant=1)
    if title:
        c.setTitle(title)
    else:
        c.setTitle("")
    c.setAuthor("kbindex tests")
    return c


def outline():
    """Four pages with nested bookmarks and an Info title; one bookmark points mid-page."""
    c = new("outline.pdf", "Outline Fixture Manual")
    p = Page(c)
    c.bookmarkPage("install")
    c.addOutlineEntry("1 Installation", "install", level=0)
    p.heading("1 Installation", 16)
    p.lines(["Installing the frobnicator needs a working compiler and about two",
             "hundred megabytes of disk space for the toolchain."])
    c.showPage()
    p = Page(c)
    c.bookmarkPage("linux")
    c.addOutlineEntry("1.1 Linux", "linux", level=1)
    p.heading("1.1 Linux", 13)
    p.lines(["On Debian systems the package manager fetches the zebrafish library",
             "before the frobnicator itself is unpacked."])
    c.showPage()
    p = Page(c)
    c.bookmarkPage("config")
    c.addOutlineEntry("2 Configuration", "config", level=0)
    p.heading("2 Configuration", 16)
    p.lines(["The configuration file lives in the home folder and is read once at",
             "start-up; later edits need a restart."])
    p.y -= 40
    c.bookmarkHorizontal("network", 0, p.y + 20)
    c.addOutlineEntry("2.1 Network settings", "network", level=1)
    p.heading("2.1 Network settings", 13)
    p.lines(["The proxy setting takes a host and a port separated by a colon, and",
             "the quokka timeout is given in seconds."])
    c.showPage()
    p = Page(c)
    c.bookmarkPage("appendix")
    c.addOutlineEntry("Appendix", "appendix", level=0)
    p.heading("Appendix", 16)
    p.lines(["Glossary of terms: a widget is a small gadget used by the marmot daemon."])
    c.showPage()
    c.save()


def fontsize():
    """No outline, no Info title: headings only by font size (18 pt and 14 pt over 10 pt)."""
    c = new("fontsize.pdf")
    p = Page(c)
    p.heading("Gardening Basics", 18)
    p.lines(["Good soil holds water and air in balance; compost improves both over",
             "a few seasons. Escaped text: a <b> & c > d stays literal."])
    p.heading("Watering", 14)
    p.lines(["Water tomatoes deeply twice a week rather than a little every day,",
             "so that the roots grow down towards the moisture."])
    p.lines(["Big type that ends like a sentence is not a heading."], size=14)
    p.heading("Pruning", 14)
    p.lines(["Prune apple trees in late winter while they are dormant and the",
             "branch structure is easy to see."])
    c.showPage()
    p = Page(c)
    p.heading("Pests", 18)
    p.lines(["Aphids gather under young leaves; a strong jet of water or ladybirds",
             "keep them in check without any spray."])
    p.heading("Slugs", 14)
    p.lines(["Slugs feed at night, so a beer trap checked each morning catches most."])
    c.showPage()
    c.save()


def headers():
    """Five pages with a running header, a footer with the page number, a bare page number,
    hyphenated words at line ends and a paragraph that continues over a page break."""
    c = new("headers.pdf", "Quarterly Report")
    bodies = {
        1: [["The first quarter saw steady growth in the northern region, where the",
             "new warehouse opened on time and under budget."]],
        2: [["Document retrie-", "val improved once the archive was scanned, and the",
             "well-known index cards were kept as a backup. The team",
             "reviewed every shelf of the basement storage room and"]],
        3: [["then moved the remaining boxes to the annex by the end of March.",
             "Shipping costs fell because the pallets were con-",
             "solidated into fewer trucks from a well-",
             "known haulier."]],
        4: [["A well-known supplier raised prices, so the purchasing team compared",
             "three other offers before renewing the contract."]],
        5: [["Next quarter the focus moves to training and the pelican project."]],
    }
    for n in range(1, 6):
        p = Page(c)
        c.setFont("Helvetica", 8)
        c.drawString(LEFT, H - 40, "ACME Corporation - Internal Use Only")
        c.drawRightString(W - LEFT, H - 40, str(n))
        c.drawCentredString(W / 2, 30, "Page %d of 5" % n)
        for para in bodies[n]:
            p.lines(para)
        c.showPage()
    c.save()


def columns():
    """One page in two columns: the left column must come out before the right one."""
    c = new("columns.pdf", "Two Columns")
    p = Page(c)
    p.heading("Field Notes", 16)
    top = p.y
    left = ["Left column opens with the", "heron survey along the river,",
            "counting eleven nests near", "the old mill weir."]
    right = ["Right column covers the", "badger setts in the beech", "wood, where fresh digging",
             "showed four active holes."]
    c.setFont("Helvetica", BODY)
    y = top
    for line in left:
        c.drawString(LEFT, y, line)
        y -= LEAD
    y = top
    for line in right:
        c.drawString(W / 2 + 20, y, line)
        y -= LEAD
    c.showPage()
    c.save()


def encrypted():
    """Needs the user password "secret" to open."""
    c = new("plain.tmp.pdf", "Secret Plans")
    Page(c).lines(["The treasure is buried under the third oak tree."])
    c.showPage()
    c.save()
    reader = PdfReader(os.path.join(OUT, "plain.tmp.pdf"))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with open(os.path.join(OUT, "encrypted.pdf"), "wb") as f:
        writer.write(f)
    os.remove(os.path.join(OUT, "plain.tmp.pdf"))


def image_only():
    """A scanned-looking page: a raster image and shapes, no text layer."""
    c = new("image-only.pdf", "Scanned Letter")
    from reportlab.lib.utils import ImageReader
    try:
        from PIL import Image
        img = Image.new("L", (60, 40), 255)
        for x in range(5, 55):
            for y in range(10, 14):
                img.putpixel((x, y), 0)
        c.drawImage(ImageReader(img), LEFT, H - 300, width=300, height=200)
    except ImportError:
        pass
    c.rect(LEFT, H - 400, 200, 50, fill=1)
    c.showPage()
    c.save()


if __name__ == "__main__":
    outline()
    fontsize()
    headers()
    columns()
    encrypted()
    image_only()
