"""Synthetic receivables portfolio: customers, invoices (with credit notes) and payments.

`generate_portfolio` writes `customers.csv`, `invoices.csv` and `payments.csv` in the
canonical formats of docs/formats.md (comma separated, UTF-8, ISO dates, amounts with a `.`
and two decimals, EUR), ready for `encours import`.

The data is deterministic for a given seed (and chunk size) and streamed:

* customers are drawn first (a few tens of thousands of rows, kept in memory as numpy
  arrays): French-style company names with valid SIREN / SIRET / VAT numbers, some
  Belgian, German, Spanish and Italian companies (valid VAT numbers, no SIREN), a few
  consumers, a heavy-tailed size (few big customers issue many invoices) and a payment
  behaviour segment: `prompt`, `late`, `seasonal`, `deteriorating`;
* the number of invoices issued each day of the period is drawn up front (weekdays,
  month ends and seasons weigh more, with a slight growth trend), so the invoices are
  generated in chunks of consecutive numbers already sorted by issue date, with numpy
  only (no Python loop per invoice) and written with polars;
* a credit note or a payment is always dated on or after its invoice's issue date, so
  everything dated before the last issue date of the current chunk is final: credit
  notes (merged into invoices.csv) and payments are buffered and flushed in date order
  as the chunks advance. Memory depends on the chunk size and on the longest payment
  delay, not on the number of invoices.

Invoice numbers are `F<year>-<7 digits>`, credit notes `A<year>-<7 digits>`, payments
`P<year>-<7 digits>`, each numbered in date order within the year. Issue dates, credit
note dates and payment dates are never after `end`; due dates of the recent invoices are
(they are not due yet). An invoice whose payment would fall after `end` is left open.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import numpy as np
import polars as pl

CURRENCY = "EUR"

CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id", "name", "siren", "siret", "vat_number", "address_line1", "address_line2",
    "postal_code", "city", "country", "currency",
    "payment_terms", "penalty_rate", "deposit_required", "retention_of_title", "is_consumer",
    "credit_limit", "segment", "account_owner", "collector", "contact_name", "contact_role",
    "contact_email", "contact_phone", "contact_language",
)  # fmt: skip
INVOICE_COLUMNS: tuple[str, ...] = (
    "invoice_number", "customer_id", "customer_name", "issue_date", "due_date", "amount",
    "currency", "paid_date", "disputed", "document_type", "applies_to", "reference", "channel",
)  # fmt: skip
PAYMENT_COLUMNS: tuple[str, ...] = (
    "payment_id", "customer_id", "date", "amount", "currency", "invoice_number", "method",
)  # fmt: skip

SEGMENTS: tuple[str, ...] = ("prompt", "late", "seasonal", "deteriorating")
PROMPT, LATE, SEASONAL, DETERIORATING = range(4)
_SEGMENT_SHARES = (0.56, 0.25, 0.14, 0.05)

# (label, days, end of month, share)
_TERMS: tuple[tuple[str, int, bool, float], ...] = (
    ("30 days net", 30, False, 0.38),
    ("45 days end of month", 45, True, 0.22),
    ("60 days net", 60, False, 0.15),
    ("30 days end of month", 30, True, 0.25),
)
METHODS: tuple[str, ...] = ("transfer", "cheque", "direct_debit", "card")
TRANSFER, CHEQUE, DIRECT_DEBIT, CARD = range(4)
_METHOD_NAMES = pl.Series("method", METHODS)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")

# Probabilities (per invoice unless stated).
_P_DISPUTED = np.array([0.018, 0.035, 0.025, 0.04])  # by segment
_P_CREDIT_NOTE = 0.028  # undisputed invoice
_P_CREDIT_NOTE_DISPUTED = 0.15
_P_FULL_CREDIT = 0.3  # a credit note cancels the whole invoice
_P_DISPUTED_PAID = 0.2  # disputed invoices are mostly still open
_P_SPLIT = 0.05  # paid invoice settled in two instalments
_P_NO_REFERENCE = 0.03  # payment without invoice number
_P_PROMPT_SLIP = 0.04  # a prompt payer occasionally pays late
_AMOUNT_SIGMA = 1.0  # lognormal sigma of invoice amounts around the customer's median
_MIN_AMOUNT = 500  # cents
_MAX_AMOUNT = 250_000_000  # cents
_BLOCKED_AFTER_STOP = 45  # days: deliveries stop this long after a customer stops paying

_MONTH_VOLUME = np.array([0.95, 1.0, 1.08, 1.0, 0.97, 1.05, 0.92, 0.62, 1.04, 1.08, 1.04, 0.9])


@dataclass
class GenerationSummary:
    """What `generate_portfolio` wrote; amounts are in `currency`."""

    out_dir: Path
    seed: int
    start: dt.date  # first possible issue date
    end: dt.date
    customers: int
    invoices: int
    credit_notes: int
    payments: int
    split_invoices: int  # invoices paid in two instalments
    unreferenced_payments: int  # payments without invoice number
    disputed_invoices: int
    open_invoices: int  # invoices with a balance left at `end`
    total_invoiced: Decimal
    total_credited: Decimal
    total_paid: Decimal
    outstanding: Decimal  # invoiced - credited - paid
    currency: str = CURRENCY
    segments: dict[str, int] = field(default_factory=dict)  # customers per segment
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates in ISO format, amounts as decimal strings."""
        return {
            "out_dir": str(self.out_dir),
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "customers": self.customers,
            "invoices": self.invoices,
            "credit_notes": self.credit_notes,
            "payments": self.payments,
            "split_invoices": self.split_invoices,
            "unreferenced_payments": self.unreferenced_payments,
            "disputed_invoices": self.disputed_invoices,
            "open_invoices": self.open_invoices,
            "total_invoiced": str(self.total_invoiced),
            "total_credited": str(self.total_credited),
            "total_paid": str(self.total_paid),
            "outstanding": str(self.outstanding),
            "currency": self.currency,
            "segments": dict(self.segments),
            "files": {name: str(path) for name, path in self.files.items()},
        }


# --------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FAMILY: tuple[str, ...] = _words(
    "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel "
    "Lefèvre Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine "
    "Rousseau Vincent Muller Lefebvre Faure André Mercier Blanc Guérin Boyer Garnier "
    "Chevalier François Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry "
    "Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont Lemaire Noël Meyer Dufour "
    "Meunier Brun Blanchard Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud "
    "Martinez Gérard Roche Renard Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre "
    "Aubert Lemoine Renaud Dumas Lacroix Olivier Philippe Bourgeois Pierre Benoît Rey "
    "Leclerc Payet Rolland Leclercq Guillaume Lecomte Lopez Dupuy Guillot Hubert Berger "
    "Carpentier Sanchez Dupuis Moulin Deschamps Huet Vasseur Perez Boucher Fleury Royer "
    "Klein Jacquet Adam Poirier Marty Aubry Guyot Carré Charles Renault Charpentier Ménard "
    "Maillard Baron Bertin Bailly Hervé Schneider Fernandez Collet Léger Bouvier Julien "
    "Prévost Millet Perrot Cousin Germain Breton Besson Langlois Rémy Pelletier Lévêque "
    "Perrier Leblanc Barré Lebrun Marchal Weber Mallet Hamon Boulanger Jacob Monnier "
    "Michaud Rodriguez Guichard Gillet Étienne Grondin Poulain Tessier Chauvin Bouchet Gay "
    "Lemaître Bénard Maréchal Humbert Reynaud Antoine Hoarau Perret Barthélemy Cordier "
    "Pichon Lejeune Gilbert Lamy Delaunay Pasquier Carlier Laporte"
) + ("Le Gall", "Le Goff", "Da Silva")
_FIRST = _words(
    "Jean Marie Pierre Nathalie Philippe Isabelle Michel Sylvie Alain Catherine Patrick "
    "Françoise Nicolas Sandrine Christophe Valérie Laurent Christine Frédéric Céline "
    "Stéphane Sophie Olivier Aurélie David Julie Julien Émilie Sébastien Camille Thomas "
    "Claire Antoine Laura Guillaume Pauline Maxime Léa Vincent Anne Romain Caroline Hugo "
    "Élodie Mathieu Hélène Éric Virginie Benoît Delphine Karim Nadia Yann Gaëlle"
)
_TRADES = (
    "Transports", "Boulangerie", "Garage", "Menuiserie", "Plomberie", "Électricité",
    "Imprimerie", "Pharmacie", "Boucherie", "Maçonnerie", "Charpentes", "Couverture",
    "Peinture", "Carrosserie", "Serrurerie", "Ébénisterie", "Fromagerie", "Brasserie",
    "Librairie", "Quincaillerie", "Pépinières", "Vins", "Laboratoires", "Cabinet", "Agence",
    "Ateliers", "Établissements", "Ets", "Groupe", "Maison", "Entreprise", "Comptoir",
    "Chaudronnerie", "Mécanique", "Fonderie", "Scierie", "Hôtel", "Traiteur", "Ambulances",
    "Optique", "Taxis", "Paysages", "Terrassements", "Métallerie", "Salaisons",
)  # fmt: skip
_NOUNS = (
    "Transports", "Matériaux", "Menuiseries", "Charpentes", "Carrières", "Fournitures",
    "Équipements", "Emballages", "Travaux Publics", "Isolation", "Chauffage", "Distribution",
    "Services", "Industries", "Métallerie", "Laboratoires", "Impressions", "Logistique",
    "Conseil", "Maintenance", "Froid", "Énergies", "Bétons", "Plastiques", "Solutions",
)  # fmt: skip
_REGIONS = (
    "de l'Ouest", "du Sud-Ouest", "de Bretagne", "de Normandie", "du Centre", "d'Alsace",
    "de Provence", "du Val de Loire", "des Alpes", "du Rhône", "de la Côte d'Azur", "du Nord",
    "de Picardie", "de Bourgogne", "d'Aquitaine", "du Languedoc", "de Lorraine",
    "de Champagne", "du Jura", "des Vosges", "de Savoie", "du Limousin", "d'Auvergne",
    "de Gascogne", "du Périgord", "de l'Est", "d'Île-de-France", "des Landes", "du Vexin",
)  # fmt: skip
_PREFIXES = (
    "Techni", "Agri", "Bati", "Logi", "Info", "Méca", "Électro", "Hydro", "Thermo", "Pro",
    "Euro", "Inter", "Multi", "Omni", "Sud", "Nord", "Ouest", "Alp", "Atlant", "Médi",
    "Armor", "Proven", "Ligé", "Rhodan", "Auver", "Garon", "Nova", "Axi", "Optim", "Éco",
    "Bio", "Cap", "Alti", "Vita", "Sérénis", "Quali",
)  # fmt: skip
_SUFFIXES = (
    "bat", "tec", "log", "pack", "métal", "bois", "plast", "services", "trans", "fluides",
    "concept", "system", "conseil", "net", "data", "form", "élec", "chimie", "verre",
    "énergie", "froid", "clim", "sol", "matériaux", "indus", "distri", "pro", "nov", "sud",
)  # fmt: skip
_TOWNS = (
    "Lyon", "Lille", "Nantes", "Rennes", "Bordeaux", "Toulouse", "Marseille", "Nice", "Dijon",
    "Reims", "Metz", "Nancy", "Tours", "Orléans", "Angers", "Brest", "Caen", "Rouen", "Amiens",
    "Grenoble", "Annecy", "Limoges", "Poitiers", "Pau", "Bayonne", "Nîmes", "Montpellier",
    "Perpignan", "Avignon", "Valence", "Clermont", "Besançon", "Mulhouse", "Colmar", "Troyes",
    "Le Mans", "Laval", "Vannes", "Lorient", "Quimper", "La Rochelle", "Niort", "Agen",
    "Albi", "Rodez", "Chartres", "Évreux", "Beauvais", "Arras", "Dunkerque", "Calais",
)  # fmt: skip
_TREES = ("Les Tilleuls", "Les Chênes", "Les Acacias", "Les Peupliers", "Le Verger",
          "Les Charmes", "Bellevue", "Les Marronniers", "Le Moulin", "Les Glycines")  # fmt: skip
# (legal form, share) for French companies; SCI names start with the form.
_FORMS = (("SAS", 0.34), ("SARL", 0.3), ("SASU", 0.1), ("SA", 0.08), ("EURL", 0.09),
          ("SNC", 0.03), ("SCI", 0.03), ("SCOP", 0.01), ("SELARL", 0.02))  # fmt: skip

_FOREIGN: dict[str, dict[str, tuple[str, ...]]] = {
    "BE": {
        "family": ("Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes",
                   "Goossens", "Wouters", "De Smet", "Lambert", "Dupont", "Leclercq",
                   "Hermans", "Vermeulen", "Dubois"),
        "noun": ("Transport", "Logistics", "Construct", "Bouw", "Trading", "Industries",
                 "Services", "Distribution", "Techniek"),
        "form": ("SRL", "SA", "BV", "NV"),
        "first": ("Luc", "Marc", "Annick", "Koen", "Sofie", "Els", "Benoît", "Véronique"),
        "towns": ("Bruxelles", "Liège", "Namur", "Charleroi", "Gent", "Antwerpen", "Brugge",
                  "Leuven", "Mons", "Hasselt", "Wavre", "Kortrijk"),
        "tld": ("be",),
    },
    "DE": {
        "family": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner",
                   "Becker", "Schulz", "Hoffmann", "Koch", "Richter", "Wolf", "Schröder",
                   "Neumann", "Braun", "Zimmermann", "Krüger", "Hartmann"),
        "noun": ("Logistik", "Maschinenbau", "Metallbau", "Elektrotechnik", "Handel", "Bau",
                 "Verpackung", "Kunststofftechnik", "Antriebstechnik", "Holzbau"),
        "form": ("GmbH", "GmbH", "AG", "GmbH & Co. KG"),
        "first": ("Thomas", "Andreas", "Stefan", "Sabine", "Petra", "Jürgen", "Anja", "Uwe"),
        "towns": ("Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Düsseldorf",
                  "Leipzig", "Dresden", "Hannover", "Nürnberg", "Bremen"),
        "tld": ("de",),
    },
    "ES": {
        "family": ("García", "Rodríguez", "González", "Fernández", "López", "Martínez",
                   "Sánchez", "Pérez", "Gómez", "Jiménez", "Ruiz", "Hernández", "Díaz",
                   "Moreno", "Álvarez", "Romero", "Navarro"),
        "noun": ("Transportes", "Construcciones", "Distribuciones", "Suministros",
                 "Logística", "Ingeniería", "Metalúrgica", "Componentes", "Alimentación"),
        "form": ("S.L.", "S.L.", "S.A."),
        "first": ("Javier", "Carmen", "Antonio", "Lucía", "Manuel", "Elena", "Pablo", "Marta"),
        "towns": ("Madrid", "Barcelona", "Valencia", "Sevilla", "Zaragoza", "Bilbao", "Málaga",
                  "Murcia", "Alicante", "Valladolid", "Vigo", "Girona"),
        "tld": ("es",),
    },
    "IT": {
        "family": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo",
                   "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca",
                   "Mancini", "Costa", "Giordano", "Lombardi", "Moretti"),
        "noun": ("Trasporti", "Costruzioni", "Meccanica", "Forniture", "Impianti",
                 "Logistica", "Alimentari", "Tessile", "Componenti"),
        "form": ("S.r.l.", "S.r.l.", "S.p.A."),
        "first": ("Marco", "Giulia", "Luca", "Francesca", "Giuseppe", "Chiara", "Paolo"),
        "towns": ("Milano", "Torino", "Roma", "Bologna", "Firenze", "Napoli", "Genova", "Verona",
                  "Padova", "Brescia", "Bergamo", "Parma"),
        "tld": ("it",),
    },
}  # fmt: skip
_COUNTRIES = (("FR", 0.9), ("BE", 0.03), ("DE", 0.03), ("ES", 0.02), ("IT", 0.02))
_PHONE_PREFIX = {"BE": "+32 2", "DE": "+49 30", "ES": "+34 91", "IT": "+39 02"}

_ROLES_FR = ("Comptable", "Responsable comptable", "Directeur administratif et financier",
             "Gérant", "Assistante de direction", "Responsable des achats",
             "Comptabilité fournisseurs", "Trésorier")  # fmt: skip
_ROLES_EN = ("Accounts payable", "Finance manager", "CFO", "Purchasing manager",
             "Office manager")  # fmt: skip
_GENERIC_FR = ("compta", "comptabilite", "factures", "fournisseurs", "contact")
_GENERIC_EN = ("accounts.payable", "ap", "finance", "invoices")
_MAIL_PROVIDERS = ("gmail.com", "orange.fr", "free.fr", "laposte.net", "sfr.fr", "wanadoo.fr")
_SALES_REPS = ("Claire Dubois", "Marc Lefèvre", "Sophie Martin", "Julien Morel",
               "Nadia Benali", "Thomas Girard")  # fmt: skip
_COLLECTORS = ("Isabelle Fontaine", "Karim Haddad", "Émilie Roux", "Lucas Perrin")
_PENALTY_RATES = ("10.00", "12.00", "15.00", "9.00", "11.50")

# Postal addresses: (postal code, city) pairs (codes are text: leading zeros) and streets.
_FR_CITIES = (
    ("01000", "Bourg-en-Bresse"), ("02100", "Saint-Quentin"), ("03100", "Montluçon"),
    ("06000", "Nice"), ("06400", "Cannes"), ("07200", "Aubenas"), ("09100", "Pamiers"),
    ("10000", "Troyes"), ("13001", "Marseille"), ("13100", "Aix-en-Provence"),
    ("14000", "Caen"), ("17000", "La Rochelle"), ("21000", "Dijon"), ("25000", "Besançon"),
    ("26000", "Valence"), ("29200", "Brest"), ("29000", "Quimper"), ("30000", "Nîmes"),
    ("31000", "Toulouse"), ("31200", "Toulouse"), ("33000", "Bordeaux"), ("33700", "Mérignac"),
    ("34000", "Montpellier"), ("35000", "Rennes"), ("37000", "Tours"), ("38000", "Grenoble"),
    ("42000", "Saint-Étienne"), ("44000", "Nantes"), ("44600", "Saint-Nazaire"),
    ("45000", "Orléans"), ("47000", "Agen"), ("49000", "Angers"), ("51100", "Reims"),
    ("54000", "Nancy"), ("56100", "Lorient"), ("57000", "Metz"), ("59000", "Lille"),
    ("59140", "Dunkerque"), ("62000", "Arras"), ("63000", "Clermont-Ferrand"),
    ("64000", "Pau"), ("64100", "Bayonne"), ("66000", "Perpignan"), ("67000", "Strasbourg"),
    ("68100", "Mulhouse"), ("69001", "Lyon"), ("69003", "Lyon"), ("69100", "Villeurbanne"),
    ("72000", "Le Mans"), ("74000", "Annecy"), ("75008", "Paris"), ("75011", "Paris"),
    ("75015", "Paris"), ("76000", "Rouen"), ("76600", "Le Havre"), ("79000", "Niort"),
    ("80000", "Amiens"), ("84000", "Avignon"), ("86000", "Poitiers"), ("87000", "Limoges"),
    ("92100", "Boulogne-Billancourt"), ("93200", "Saint-Denis"), ("94000", "Créteil"),
    ("95000", "Cergy"),
)  # fmt: skip
_FR_STREET_TYPES = ("rue", "rue", "rue", "avenue", "boulevard", "allée", "chemin", "impasse",
                    "place", "route", "quai")  # fmt: skip
_FR_STREETS = (
    "de la République", "Victor Hugo", "Jean Jaurès", "du Général de Gaulle", "Pasteur",
    "de la Gare", "des Lilas", "du Moulin", "de l'Église", "Gambetta", "Voltaire",
    "Jules Ferry", "de Verdun", "du Stade", "des Écoles", "de la Paix", "Émile Zola",
    "du Maréchal Foch", "de Paris", "Carnot", "des Tilleuls", "du Port", "de l'Industrie",
    "des Artisans", "du 8 Mai 1945", "de la Liberté", "Anatole France", "Paul Bert",
    "des Peupliers", "du Commerce", "Louis Pasteur", "de Bretagne", "des Vignes",
)  # fmt: skip
_FR_LINE2 = ("ZI des Tilleuls", "ZA du Moulin", "Bâtiment B", "Parc d'activités Les Chênes",
             "BP 40123", "CS 70021", "ZI Nord", "Zone artisanale Bellevue",
             "Immeuble Le Verger")  # fmt: skip
_FOREIGN_ADDRESS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...], str]] = {
    # country: (streets, (postal code, city) pairs, layout: "{street} {n}" or "{street}, {n}")
    "BE": (("Rue de la Loi", "Avenue Louise", "Chaussée de Namur", "Kerkstraat", "Stationsstraat",
            "Rue du Commerce"),
           (("1000", "Bruxelles"), ("4000", "Liège"), ("5000", "Namur"), ("6000", "Charleroi"),
            ("9000", "Gent"), ("2000", "Antwerpen"), ("7000", "Mons")), "{street} {n}"),
    "DE": (("Hauptstraße", "Bahnhofstraße", "Industriestraße", "Gartenstraße", "Schulstraße"),
           (("10115", "Berlin"), ("20095", "Hamburg"), ("80331", "München"), ("50667", "Köln"),
            ("70173", "Stuttgart"), ("04109", "Leipzig"), ("01067", "Dresden")), "{street} {n}"),
    "ES": (("Calle Mayor", "Avenida de la Constitución", "Calle Real", "Polígono Industrial Sur"),
           (("28001", "Madrid"), ("08001", "Barcelona"), ("46001", "Valencia"),
            ("41001", "Sevilla"), ("48001", "Bilbao"), ("03001", "Alicante")), "{street}, {n}"),
    "IT": (("Via Roma", "Via Garibaldi", "Corso Italia", "Via dell'Industria", "Via Milano"),
           (("20121", "Milano"), ("10121", "Torino"), ("00184", "Roma"), ("40121", "Bologna"),
            ("50123", "Firenze"), ("37121", "Verona")), "{street} {n}"),
}  # fmt: skip


# --------------------------------------------------------------------------------------
# Small vectorised helpers (dates are int64 days since 1970-01-01)
# --------------------------------------------------------------------------------------


def _epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _add_months(day: dt.date, months: int) -> dt.date:
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def _month_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1


def _year_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _end_of_month(days: np.ndarray) -> np.ndarray:
    month = days.astype("datetime64[D]").astype("datetime64[M]")
    return (month + 1).astype("datetime64[D]").astype(np.int64) - 1


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)


def _next_business_day(days: np.ndarray) -> np.ndarray:
    wd = _weekday(days)
    return days + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))


def _previous_business_day(days: np.ndarray) -> np.ndarray:
    wd = _weekday(days)
    return days - np.where(wd == 5, 1, np.where(wd == 6, 2, 0))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) matrix of the decimal digits of `values`, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers) % 10


def _luhn_check_digit(payload: np.ndarray, width: int) -> np.ndarray:
    """Luhn check digit to append to each `width`-digit payload."""
    digits = _digits(payload, width)
    doubled = (width - 1 - np.arange(width)) % 2 == 0  # the rightmost payload digit doubles
    values = np.where(doubled, digits * 2, digits)
    values = np.where(values > 9, values - 9, values)
    return (10 - values.sum(axis=1) % 10) % 10


def _mod_11_10_check_digit(payload: np.ndarray, width: int) -> np.ndarray:
    """ISO 7064 Mod 11,10 check digit (German VAT numbers)."""
    digits = _digits(payload, width)
    check = np.full(len(payload), 5, dtype=np.int64)
    for j in range(width):
        check = (np.where(check == 0, 10, check) * 2 % 11 + digits[:, j]) % 10
    return (1 - np.where(check == 0, 10, check) * 2 % 11) % 10


def _unique_ints(
    rng: np.random.Generator, low: int, high: int, n: int, exclude: Sequence[int] = ()
) -> np.ndarray:
    """`n` distinct integers in [low, high), drawn in a reproducible order."""
    values = rng.integers(low, high, n, dtype=np.int64)
    while True:
        _, first = np.unique(values, return_index=True)
        bad = np.ones(n, dtype=bool)
        bad[first] = False
        if exclude:
            bad |= np.isin(values, np.asarray(exclude, dtype=np.int64))
        count = int(bad.sum())
        if not count:
            return values
        values[bad] = rng.integers(low, high, count, dtype=np.int64)


def _money_expr(column: str) -> pl.Expr:
    """Int64 cents (positive) -> '1234.56'."""
    cents = pl.col(column)
    return pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2))


def _number_expr(prefix: str, year: str, seq: str) -> pl.Expr:
    return pl.format(prefix + "{}-{}", pl.col(year), pl.col(seq).cast(pl.String).str.zfill(7))


def _date_series(name: str, days: np.ndarray) -> pl.Series:
    return pl.Series(name, days.astype(np.int32)).cast(pl.Date)


def _choice(rng: np.random.Generator, shares: Sequence[float], n: int) -> np.ndarray:
    p = np.asarray(shares, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum())


@functools.lru_cache(maxsize=65_536)
def _slug(text: str) -> str:
    """'Électricité de l'Ouest' -> 'electricite-de-l-ouest' (for e-mail addresses)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")


def _round_limit(values: np.ndarray) -> np.ndarray:
    """Round credit limits (euros) to a 'nice' step growing with the amount."""
    step = np.select(
        [values < 10_000, values < 100_000, values < 1_000_000], [500, 5_000, 10_000], 50_000
    )
    return np.maximum(np.rint(values / step) * step, 1_000).astype(np.int64)


# --------------------------------------------------------------------------------------
# Calendar: how many invoices each day
# --------------------------------------------------------------------------------------


@dataclass
class _Calendar:
    first_day: int  # epoch day of the first possible issue date
    end_day: int
    cum: np.ndarray  # cum[d]: invoices issued on period days 0..d
    year_base: np.ndarray  # per period day: global index of the first invoice of its year

    @classmethod
    def build(
        cls, rng: np.random.Generator, start: dt.date, end: dt.date, invoices: int
    ) -> _Calendar:
        first_day, end_day = _epoch_day(start) + 1, _epoch_day(end)
        days = np.arange(first_day, end_day + 1, dtype=np.int64)
        wd = _weekday(days)
        weight = np.select([wd < 5, wd == 5], [1.0, 0.06], 0.015)
        weight *= _MONTH_VOLUME[_month_of(days) - 1]
        weight *= np.where(_end_of_month(days) == days, 2.0, 1.0)  # month-end invoicing
        weight *= 1.0 + 0.06 * (days - first_day) / 365.25  # growth
        counts = rng.multinomial(invoices, weight / weight.sum())
        cum = np.cumsum(counts)
        years = _year_of(days)
        first_of_year = np.searchsorted(years, years, side="left")
        year_base = (cum - counts)[first_of_year]
        return cls(first_day, end_day, cum, year_base)

    def day_index(self, idx: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.cum, idx, side="right")

    def invoice_numbers(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(year, sequence within the year) of the invoices of global indexes `idx`."""
        day = self.day_index(idx)
        years = _year_of(self.first_day + day)
        return years, idx - self.year_base[day] + 1


# --------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------


@dataclass
class _Customers:
    frame: pl.DataFrame | None  # customers.csv (dropped once written)
    ids: pl.Series
    names: pl.Series
    segment: np.ndarray
    term_days: np.ndarray
    term_eom: np.ndarray
    cdf: np.ndarray  # cumulative invoicing weights
    alt_ids: np.ndarray  # non-deteriorating customers (take over blocked accounts' orders)
    alt_cdf: np.ndarray
    log_median: np.ndarray  # log of the customer's median invoice amount (euros)
    early: np.ndarray  # prompt: mean delay (days, <= 0 mostly)
    late_mean: np.ndarray  # late: mean delay
    det_start: np.ndarray  # deteriorating: epoch day the delays start growing
    det_slope: np.ndarray  # days of delay added per day after det_start
    det_stop: np.ndarray  # epoch day after which nothing is paid
    method: np.ndarray
    p_electronic: np.ndarray
    ref_style: np.ndarray


def _addresses(rng: np.random.Generator, country: np.ndarray, codes: Sequence[str]) -> pl.DataFrame:
    """Postal addresses (address_line1, address_line2, postal_code, city), vectorised: a
    street number and name, a complement for some, a real (postal code, city) pair."""
    n = len(country)
    number = rng.integers(1, 160, n)
    suffix = np.where(rng.random(n) < 0.05, " bis", "")
    street_type = rng.integers(0, len(_FR_STREET_TYPES), n)
    street = rng.integers(0, len(_FR_STREETS), n)
    city = rng.integers(0, len(_FR_CITIES), n)
    line2 = np.where(rng.random(n) < 0.15, rng.integers(0, len(_FR_LINE2), n), -1)
    pick = rng.integers(0, 1 << 30, (n, 2))
    line1 = np.char.add(
        np.char.add(np.char.add(number.astype(str), suffix), " "),
        np.char.add(
            np.char.add(np.array(_FR_STREET_TYPES)[street_type], " "),
            np.array(_FR_STREETS)[street],
        ),
    ).astype(object)
    postal = np.array([c for c, _ in _FR_CITIES], dtype=object)[city]
    town = np.array([t for _, t in _FR_CITIES], dtype=object)[city]
    extra = np.array([*_FR_LINE2, None], dtype=object)[np.where(line2 >= 0, line2, len(_FR_LINE2))]
    for k, code in enumerate(codes):
        if code not in _FOREIGN_ADDRESS:
            continue
        rows = np.flatnonzero(country == k)
        if not rows.size:
            continue
        streets, towns, layout = _FOREIGN_ADDRESS[code]
        s_idx = pick[rows, 0] % len(streets)
        t_idx = pick[rows, 1] % len(towns)
        line1[rows] = [
            layout.format(street=streets[s], n=int(num))
            for s, num in zip(s_idx.tolist(), number[rows].tolist(), strict=True)
        ]
        postal[rows] = [towns[t][0] for t in t_idx.tolist()]
        town[rows] = [towns[t][1] for t in t_idx.tolist()]
        extra[rows] = None
    return pl.DataFrame(
        {
            "address_line1": pl.Series(line1.tolist(), dtype=pl.String),
            "address_line2": pl.Series(extra.tolist(), dtype=pl.String),
            "postal_code": pl.Series(postal.tolist(), dtype=pl.String),
            "city": pl.Series(town.tolist(), dtype=pl.String),
        }
    )


def _make_customers(
    rng: np.random.Generator,
    n: int,
    invoices: int,
    cal: _Calendar,
    months: int,
    rng_addresses: np.random.Generator | None = None,
) -> _Customers:
    width = max(6, len(str(n)))
    ids = [f"C{i:0{width}d}" for i in range(1, n + 1)]

    country_codes = tuple(c for c, _ in _COUNTRIES)
    country = _choice(rng, [s for _, s in _COUNTRIES], n)
    is_fr = country == 0
    consumer = is_fr & (rng.random(n) < 0.015)
    company_fr = is_fr & ~consumer

    segment = _choice(rng, _SEGMENT_SHARES, n)
    term = _choice(rng, [t[3] for t in _TERMS], n)
    term[consumer] = 0
    term_days = np.array([t[1] for t in _TERMS])[term]
    term_eom = np.array([t[2] for t in _TERMS])[term]

    # Size: heavy tailed (lognormal); consumers are small.
    size = rng.lognormal(0.0, 1.6, n)
    size[consumer] *= 0.05
    weight = size.copy()
    p = weight / weight.sum()
    log_median = np.log(900.0) + 0.4 * np.log(size) + rng.normal(0.0, 0.35, n)
    log_median[consumer] = np.log(180.0) + rng.normal(0.0, 0.3, int(consumer.sum()))

    # Behaviour parameters.
    early = np.where(rng.random(n) < 0.3, -rng.uniform(4, 10, n), rng.uniform(-2, 1, n))
    late_mean = rng.uniform(18, 55, n)
    period = cal.end_day - cal.first_day + 1
    det_stop = cal.end_day - rng.integers(15, max(16, int(0.45 * period)), n)
    det_start = det_stop - rng.integers(90, 240, n)
    det_slope = rng.uniform(0.15, 0.45, n)

    method = _choice(rng, (0.72, 0.15, 0.1, 0.03), n)
    method[(method == DIRECT_DEBIT) & (segment != PROMPT)] = TRANSFER
    method[consumer] = _choice(rng, (0.15, 0.25, 0.0, 0.6), int(consumer.sum()))
    p_electronic = np.array([0.1, 0.55, 0.95])[_choice(rng, (0.3, 0.3, 0.4), n)]
    p_electronic[consumer] = 0.05
    ref_style = _choice(rng, (0.3, 0.3, 0.25, 0.15), n)  # 0: customer gives no PO number
    ref_style[size > 8] = np.maximum(ref_style[size > 8], 1)
    ref_style[consumer] = 0

    # Identifiers: SIREN (8 random digits + Luhn), SIRET (+ NIC, Luhn over 14 digits).
    n_fr = int(company_fr.sum())
    siren_base = _unique_ints(rng, 30_000_000, 100_000_000, n_fr, exclude=(35_600_000,))
    siren = siren_base * 10 + _luhn_check_digit(siren_base, 8)
    nic4 = rng.integers(1, 40, n_fr)
    siret_payload = siren * 10_000 + nic4
    siret = siret_payload * 10 + _luhn_check_digit(siret_payload, 13)
    vat_key = (12 + 3 * (siren % 97)) % 97
    siren_s = [f"{v:09d}" for v in siren.tolist()]
    siret_s = [f"{v:014d}" for v in siret.tolist()]
    vat_fr = [f"FR{k:02d}{s}" for k, s in zip(vat_key.tolist(), siren_s, strict=True)]
    foreign_vat = _foreign_vat(rng, country, country_codes)

    # Money and contract terms.
    monthly = (invoices / max(months, 1)) * p * np.exp(log_median + _AMOUNT_SIGMA**2 / 2)
    exposure = monthly * (term_days / 30 + np.where(term_eom, 0.5, 0.0) + 1.0)
    credit_limit = _round_limit(exposure * rng.uniform(1.0, 2.0, n))
    credit_limit[consumer] = rng.choice([500, 1_000, 1_500, 2_000, 3_000], int(consumer.sum()))
    penalty = np.where(rng.random(n) < 0.15, rng.integers(0, len(_PENALTY_RATES), n), -1)
    deposit = rng.random(n) < np.where(segment == PROMPT, 0.02, 0.08)
    retention = rng.random(n) < np.where(consumer, 0.0, 0.25)
    language_en = np.where(is_fr, rng.random(n) < 0.03, country != 1)  # BE speaks French
    owner = rng.integers(0, len(_SALES_REPS), n)
    collector = rng.integers(0, len(_COLLECTORS), n)

    # Names and contacts: one pass in Python over pre-drawn integers.
    pattern = _choice(rng, (0.33, 0.2, 0.12, 0.13, 0.1, 0.05, 0.07), n)
    form = _choice(rng, [s for _, s in _FORMS], n)
    r = rng.integers(0, 1 << 30, size=(n, 10)).tolist()
    names: list[str] = []
    contacts: list[str] = []
    roles: list[str] = []
    emails: list[str] = []
    phones: list[str] = []
    sirens: list[str | None] = []
    sirets: list[str | None] = []
    vats: list[str | None] = []
    fr_pos = 0
    seen: set[str] = set()
    for i in range(n):
        ri = r[i]
        code = country_codes[country[i]]
        en = bool(language_en[i])
        if code == "FR":
            first, last = _FIRST[ri[0] % len(_FIRST)], _FAMILY[ri[1] % len(_FAMILY)]
        else:
            data = _FOREIGN[code]
            first = data["first"][ri[0] % len(data["first"])]
            last = data["family"][ri[1] % len(data["family"])]
        contact = f"{first} {last}"
        if consumer[i]:
            name = contact
            domain = _MAIL_PROVIDERS[ri[4] % len(_MAIL_PROVIDERS)]
            sirens.append(None)
            sirets.append(None)
            vats.append(None)
            role = ""
        else:
            if code == "FR":
                core, legal = _french_name(int(pattern[i]), _FORMS[form[i]][0], ri)
                name = _unique_name(seen, core, legal, _TOWNS, ri[9])
                sirens.append(siren_s[fr_pos])
                sirets.append(siret_s[fr_pos])
                vats.append(vat_fr[fr_pos])
                fr_pos += 1
                tld = "fr" if ri[5] % 5 else "com"
            else:
                data = _FOREIGN[code]
                family = data["family"][ri[2] % len(data["family"])]
                core = f"{family} {data['noun'][ri[3] % len(data['noun'])]}"
                legal = data["form"][ri[4] % len(data["form"])]
                name = _unique_name(seen, core, legal, data["towns"], ri[9])
                sirens.append(None)
                sirets.append(None)
                vats.append(foreign_vat[i])
                tld = data["tld"][0] if ri[5] % 5 else "com"
            domain = f"{_slug(core)}.{tld}"
            role_list = _ROLES_EN if en else _ROLES_FR
            role = role_list[ri[6] % len(role_list)]
        if consumer[i] or ri[7] % 100 < 65:
            local = f"{_slug(first).replace('-', '')}.{_slug(last)}"
        else:
            generic = _GENERIC_EN if en else _GENERIC_FR
            local = generic[ri[7] % len(generic)]
        names.append(name)
        contacts.append(contact)
        roles.append(role)
        emails.append(f"{local}@{domain}")
        phones.append(_phone(code, bool(consumer[i]) or form[i] in (2, 4), ri[8], ri[9]))

    frame = pl.DataFrame(
        {
            "customer_id": ids,
            "name": names,
            "siren": pl.Series(sirens, dtype=pl.String),
            "siret": pl.Series(sirets, dtype=pl.String),
            "vat_number": pl.Series(vats, dtype=pl.String),
            "country": np.array(country_codes)[country],
            "currency": [CURRENCY] * n,
            "payment_terms": np.array([t[0] for t in _TERMS])[term],
            "penalty_rate": pl.Series(
                [_PENALTY_RATES[k] if k >= 0 else None for k in penalty.tolist()],
                dtype=pl.String,
            ),
            "deposit_required": deposit,
            "retention_of_title": retention,
            "is_consumer": consumer,
            "credit_limit": credit_limit * 100,
            "segment": np.array(SEGMENTS)[segment],
            "account_owner": np.array(_SALES_REPS)[owner],
            "collector": np.array(_COLLECTORS)[collector],
            "contact_name": contacts,
            "contact_role": pl.Series([role or None for role in roles], dtype=pl.String),
            "contact_email": emails,
            "contact_phone": phones,
            "contact_language": np.where(language_en, "en", "fr"),
        }
    ).with_columns(_money_expr("credit_limit").alias("credit_limit"))
    # Addresses come from their own random stream: the other columns stay as they were.
    frame = frame.hstack(
        _addresses(rng_addresses or np.random.default_rng(n), country, country_codes)
    )

    alt_ids = np.flatnonzero(segment != DETERIORATING)
    return _Customers(
        frame=frame.select(list(CUSTOMER_COLUMNS)),
        ids=pl.Series("customer_id", ids),
        names=pl.Series("customer_name", names),
        segment=segment,
        term_days=term_days,
        term_eom=term_eom,
        cdf=np.cumsum(p),
        alt_ids=alt_ids,
        alt_cdf=np.cumsum(p[alt_ids]),
        log_median=log_median,
        early=early,
        late_mean=late_mean,
        det_start=det_start,
        det_slope=det_slope,
        det_stop=det_stop,
        method=method,
        p_electronic=p_electronic,
        ref_style=ref_style,
    )


def _french_name(pattern: int, form: str, r: list[int]) -> tuple[str, str]:
    """(name without legal form, legal form)."""
    family = _FAMILY[r[2] % len(_FAMILY)]
    invented = _PREFIXES[r[3] % len(_PREFIXES)] + _SUFFIXES[r[4] % len(_SUFFIXES)]
    if form == "SCI":
        return (family if r[5] % 2 else _TREES[r[6] % len(_TREES)]), form
    if pattern == 0:
        core = f"{_TRADES[r[3] % len(_TRADES)]} {family}"
    elif pattern == 1:
        core = invented
    elif pattern == 2:
        core = f"{_NOUNS[r[3] % len(_NOUNS)]} {_REGIONS[r[4] % len(_REGIONS)]}"
    elif pattern == 3:
        other = _FAMILY[r[6] % len(_FAMILY)]
        core = (
            f"{family} & Fils",
            f"{family} Frères",
            f"{family} et Associés",
            f"{family}-{other}",
        )[r[5] % 4]
    elif pattern == 4:
        core = f"{invented} {_NOUNS[r[5] % len(_NOUNS)]}"
    elif pattern == 5:
        letters = "".join(chr(65 + (r[5] >> (5 * k)) % 26) for k in range(3))
        core = f"{letters} {_NOUNS[r[6] % len(_NOUNS)]}"
    else:
        core = f"Groupe {family}"
    return core, form


def _unique_name(seen: set[str], core: str, legal: str, towns: Sequence[str], start: int) -> str:
    """`core legal` (`SCI core`), with a town added when the name is already taken."""

    def full(text: str) -> str:
        return f"SCI {text}" if legal == "SCI" else f"{text} {legal}"

    name = full(core)
    for k in range(len(towns)):
        if name not in seen:
            break
        name = full(f"{core} {towns[(start + k) % len(towns)]}")
    seen.add(name)
    return name


def _phone(country: str, mobile: bool, a: int, b: int) -> str:
    if country == "FR":
        lead = (6 + a % 2) if mobile else (1 + a % 5)
        digits = f"{b % 100_000_000:08d}"
        pairs = " ".join(digits[k : k + 2] for k in range(0, 8, 2))
        return f"0{lead} {pairs}"
    digits = f"{b % 10_000_000:07d}"
    return f"{_PHONE_PREFIX[country]} {digits[:3]} {digits[3:5]} {digits[5:]}"


def _foreign_vat(
    rng: np.random.Generator, country: np.ndarray, codes: tuple[str, ...]
) -> list[str | None]:
    """Valid VAT numbers for the BE/DE/ES/IT customers (None elsewhere)."""
    out: list[str | None] = [None] * len(country)
    for code in ("BE", "DE", "ES", "IT"):
        rows = np.flatnonzero(country == codes.index(code))
        if not len(rows):
            continue
        k = len(rows)
        if code == "BE":  # 0 + 7 digits, then 97 - (first 8 digits mod 97)
            body = _unique_ints(rng, 2_000_000, 10_000_000, k)
            check = 97 - body % 97
            values = [
                f"BE{b:08d}{c:02d}" for b, c in zip(body.tolist(), check.tolist(), strict=True)
            ]
        elif code == "DE":  # 8 digits (no leading zero) + ISO 7064 Mod 11,10
            body = _unique_ints(rng, 10_000_000, 100_000_000, k)
            number = body * 10 + _mod_11_10_check_digit(body, 8)
            values = [f"DE{v:09d}" for v in number.tolist()]
        elif code == "ES":  # CIF of a limited company: B + 7 digits + Luhn digit
            body = _unique_ints(rng, 1_000_000, 10_000_000, k)
            number = body * 10 + _luhn_check_digit(body, 7)
            values = [f"ESB{v:08d}" for v in number.tolist()]
        else:  # IT: 7-digit company number, 3-digit tax office, Luhn digit
            body = _unique_ints(rng, 1_000_000, 10_000_000, k) * 1000 + rng.integers(1, 101, k)
            number = body * 10 + _luhn_check_digit(body, 10)
            values = [f"IT{v:011d}" for v in number.tolist()]
        for row, value in zip(rows.tolist(), values, strict=True):
            out[row] = value
    return out


# --------------------------------------------------------------------------------------
# Invoices and payments
# --------------------------------------------------------------------------------------


class _Buffer:
    """Rows (dicts of equal-length numpy arrays) waiting for their date to become final.

    Each batch is sorted once by `keys` (the first is "date") when it is added; popping
    the rows dated before a day then only slices every batch (no copy of what stays)."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.batches: list[tuple[dict[str, np.ndarray], list[int]]] = []

    def _sort(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        order = np.lexsort([batch[k] for k in reversed(self.keys)])
        return {k: v[order] for k, v in batch.items()}

    def add(self, batch: dict[str, np.ndarray]) -> None:
        if len(batch["date"]):
            self.batches.append((self._sort(batch), [0]))

    def pop_before(self, day: int | None) -> dict[str, np.ndarray]:
        """Remove and return the rows dated before `day` (all if None), sorted by `keys`."""
        parts: list[dict[str, np.ndarray]] = []
        for data, cursor in self.batches:
            dates = data["date"]
            start = cursor[0]
            stop = len(dates) if day is None else int(np.searchsorted(dates, day, "left"))
            if stop > start:
                parts.append({k: v[start:stop] for k, v in data.items()})
                cursor[0] = stop
        self.batches = [(d, c) for d, c in self.batches if c[0] < len(d["date"])]
        if not parts:
            return {}
        if len(parts) == 1:
            return parts[0]
        return self._sort({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def _sequence_in_year(years: np.ndarray, counters: dict[int, int]) -> np.ndarray:
    """Number rows (sorted by date) within their year, continuing `counters`."""
    seq = np.empty(len(years), dtype=np.int64)
    for year in np.unique(years).tolist():
        mask = years == year
        count = int(mask.sum())
        base = counters.get(year, 0)
        seq[mask] = np.arange(base + 1, base + count + 1)
        counters[year] = base + count
    return seq


@dataclass
class _Totals:
    invoices: int = 0
    credit_notes: int = 0
    payments: int = 0
    split: int = 0
    unreferenced: int = 0
    disputed: int = 0
    open: int = 0
    invoiced: int = 0
    credited: int = 0
    paid: int = 0


class _Writer:
    def __init__(
        self,
        rng: np.random.Generator,
        cal: _Calendar,
        cust: _Customers,
        invoices_fh: IO[bytes],
        payments_fh: IO[bytes],
    ) -> None:
        self.rng = rng
        self.cal = cal
        self.cust = cust
        self.invoices_fh = invoices_fh
        self.payments_fh = payments_fh
        self.credit_notes = _Buffer(("date", "inv"))
        self.payments = _Buffer(("date", "inv", "part"))
        self.cn_counters: dict[int, int] = {}
        self.pay_counters: dict[int, int] = {}
        self.totals = _Totals()

    # -- one chunk of consecutive invoices ------------------------------------------
    def chunk(self, i0: int, i1: int) -> None:
        rng, cal, cust = self.rng, self.cal, self.cust
        n = i1 - i0
        end = cal.end_day
        idx = np.arange(i0, i1, dtype=np.int64)
        issue = cal.first_day + cal.day_index(idx)

        c = np.minimum(
            np.searchsorted(cust.cdf, rng.random(n) * cust.cdf[-1], side="right"), len(cust.cdf) - 1
        )
        if len(cust.alt_ids):  # a customer who stopped paying gets no more deliveries
            blocked = (cust.segment[c] == DETERIORATING) & (
                issue > cust.det_stop[c] + _BLOCKED_AFTER_STOP
            )
            k = int(blocked.sum())
            if k:
                pick = np.searchsorted(cust.alt_cdf, rng.random(k) * cust.alt_cdf[-1], "right")
                c[blocked] = cust.alt_ids[np.minimum(pick, len(cust.alt_ids) - 1)]
        seg = cust.segment[c]

        amount = np.rint(np.exp(rng.normal(cust.log_median[c], _AMOUNT_SIGMA)) * 100)
        amount = np.clip(amount, _MIN_AMOUNT, _MAX_AMOUNT).astype(np.int64)
        due = issue + cust.term_days[c]
        due = np.where(cust.term_eom[c], _end_of_month(due), due)
        disputed = rng.random(n) < _P_DISPUTED[seg]

        # Credit notes: partial or full, a few days after the invoice.
        has_cn = rng.random(n) < np.where(disputed, _P_CREDIT_NOTE_DISPUTED, _P_CREDIT_NOTE)
        full = rng.random(n) < _P_FULL_CREDIT
        part = np.rint(amount * rng.uniform(0.05, 0.6, n)).astype(np.int64)
        cn_amount = np.where(has_cn, np.where(full, amount, np.maximum(part, 1)), 0)
        cn_date = np.minimum(issue + rng.integers(1, 46, n), end)
        to_pay = amount - cn_amount

        # Payment date: due date + the segment's delay.
        z = rng.standard_normal(n)
        delay_prompt = np.clip(np.rint(cust.early[c] + 3 * z), -15, 7)
        delay_prompt = np.where(cust.method[c] == DIRECT_DEBIT, 0, delay_prompt)
        delay_prompt += np.where(rng.random(n) < _P_PROMPT_SLIP, rng.integers(5, 26, n), 0)
        delay_late = np.clip(np.rint(cust.late_mean[c] + 8 * z), 15, 60)
        delay_seasonal = np.clip(np.rint(1 + 4 * z), -5, 10)
        month = _month_of(due + delay_seasonal.astype(np.int64))
        summer_or_december = (month == 7) | (month == 8) | (month == 12)
        delay_seasonal += np.where(summer_or_december, rng.integers(20, 51, n), 0)
        drift = np.maximum(due - cust.det_start[c], 0) * cust.det_slope[c]
        delay_det = np.rint(2 + 4 * z + drift)
        delay = np.choose(seg, [delay_prompt, delay_late, delay_seasonal, delay_det])
        dispute_paid = rng.random(n) < _P_DISPUTED_PAID
        delay = delay + np.where(disputed, rng.integers(30, 121, n), 0)
        pay = due + delay.astype(np.int64)
        pay = np.maximum(pay, np.where(has_cn, cn_date, issue))
        pay = _next_business_day(pay)
        paid = (pay <= end) & (to_pay > 0) & (~disputed | dispute_paid)
        paid &= ~((seg == DETERIORATING) & (pay > cust.det_stop[c]))

        # Two instalments for some paid invoices.
        split = paid & (to_pay >= 2) & (rng.random(n) < _P_SPLIT)
        first_amount = np.clip(np.rint(to_pay * rng.uniform(0.3, 0.7, n)), 1, to_pay - 1)
        first_amount = first_amount.astype(np.int64)
        first_date = _previous_business_day(pay - rng.integers(7, 36, n))
        first_date = np.maximum(first_date, np.where(has_cn, cn_date, issue))

        method = np.where(rng.random(n) < 0.9, cust.method[c], _choice(rng, (0.8, 0.2), n))
        rows_full = np.flatnonzero(paid)
        rows_first = np.flatnonzero(split)
        pay_rows = np.concatenate([rows_full, rows_first])
        pay_amount = np.concatenate(
            [np.where(split, to_pay - first_amount, to_pay)[rows_full], first_amount[rows_first]]
        )
        pay_date = np.concatenate([pay[rows_full], first_date[rows_first]])
        pay_part = np.concatenate(
            [np.where(split[rows_full], 2, 1), np.zeros(len(rows_first), np.int64)]
        )
        with_ref = rng.random(len(pay_rows)) >= _P_NO_REFERENCE
        self.payments.add(
            {
                "date": pay_date,
                "inv": idx[pay_rows],
                "part": pay_part,
                "cust": c[pay_rows],
                "amount": pay_amount,
                "method": method[pay_rows],
                "ref": with_ref,
            }
        )

        electronic = rng.random(n) < cust.p_electronic[c]
        po = rng.integers(0, 1_000_000, n)
        cn_rows = np.flatnonzero(has_cn)
        self.credit_notes.add(
            {
                "date": cn_date[cn_rows],
                "inv": idx[cn_rows],
                "cust": c[cn_rows],
                "amount": cn_amount[cn_rows],
                "po": po[cn_rows],
                "electronic": electronic[cn_rows],
            }
        )

        t = self.totals
        t.invoices += n
        t.credit_notes += len(cn_rows)
        t.split += len(rows_first)
        t.disputed += int(disputed.sum())
        t.open += int(((to_pay > 0) & ~paid).sum())
        t.invoiced += int(amount.sum())
        t.credited += int(cn_amount.sum())
        t.paid += int(pay_amount.sum())

        years, seq = cal.invoice_numbers(idx)
        frame = pl.DataFrame(
            {
                "_day": issue,
                "_kind": np.zeros(n, np.int8),
                "_order": idx,
                "_year": years,
                "_seq": seq,
                "_ref_year": years,
                "_cust": c,
                "issue_date": _date_series("issue_date", issue),
                "due_date": _date_series("due_date", due),
                "_amount": amount,
                "disputed": disputed,
                "_po": po,
                "_electronic": electronic,
            }
        )
        invoices = self._documents(frame, "F", "invoice")
        last_day = int(issue[-1])
        credit_notes = self._credit_notes_before(last_day)
        self._write_documents(invoices, credit_notes)
        self._flush_payments(last_day)

    # -- documents ------------------------------------------------------------------
    def _documents(self, frame: pl.DataFrame, prefix: str, kind: str) -> pl.DataFrame:
        cust = self.cust
        style = cust.ref_style[frame["_cust"].to_numpy()]
        po = pl.col("_po").cast(pl.String)
        reference = (
            pl.when(pl.col("_style") == 1)
            .then(pl.format("PO-{}", po.str.zfill(6)))
            .when(pl.col("_style") == 2)
            .then(pl.format("BC{}{}", pl.col("_ref_year"), po.str.zfill(6)))
            .when(pl.col("_style") == 3)
            .then(pl.format("CMD {}", po.str.zfill(6).str.slice(0, 5)))
            .otherwise(pl.lit(None, pl.String))
        )
        if "applies_to" not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias("applies_to"))
        return frame.with_columns(
            _number_expr(prefix, "_year", "_seq").alias("invoice_number"),
            cust.ids.gather(frame["_cust"]).alias("customer_id"),
            cust.names.gather(frame["_cust"]).alias("customer_name"),
            _money_expr("_amount").alias("amount"),
            pl.lit(CURRENCY).alias("currency"),
            pl.lit(None, pl.String).alias("paid_date"),
            pl.lit(kind).alias("document_type"),
            pl.when(pl.col("_electronic"))
            .then(pl.lit("electronic"))
            .otherwise(pl.lit("paper"))
            .alias("channel"),
            pl.Series("_style", style),
        ).with_columns(reference.alias("reference"))

    def _credit_notes_before(self, day: int | None) -> pl.DataFrame | None:
        batch = self.credit_notes.pop_before(day)
        if not batch or not len(batch["date"]):
            return None
        cn_date = batch["date"]
        years = _year_of(cn_date)
        seq = _sequence_in_year(years, self.cn_counters)
        inv_year, inv_seq = self.cal.invoice_numbers(batch["inv"])
        frame = pl.DataFrame(
            {
                "_day": cn_date,
                "_kind": np.ones(len(cn_date), np.int8),
                "_order": batch["inv"],
                "_year": years,
                "_seq": seq,
                "_ref_year": inv_year,  # the credit note repeats its invoice's reference
                "_cust": batch["cust"],
                "issue_date": _date_series("issue_date", cn_date),
                "due_date": _date_series("due_date", cn_date),
                "_amount": batch["amount"],
                "disputed": np.zeros(len(cn_date), bool),
                "_po": batch["po"],
                "_electronic": batch["electronic"],
                "_inv_year": inv_year,
                "_inv_seq": inv_seq,
            }
        ).with_columns(_number_expr("F", "_inv_year", "_inv_seq").alias("applies_to"))
        return self._documents(frame, "A", "credit_note")

    def _write_documents(
        self, invoices: pl.DataFrame | None, credit_notes: pl.DataFrame | None
    ) -> None:
        frames = [
            f.select("_day", "_kind", "_order", *INVOICE_COLUMNS)
            for f in (invoices, credit_notes)
            if f is not None
        ]
        if not frames:
            return
        merged = pl.concat(frames) if len(frames) > 1 else frames[0]
        if len(frames) > 1:
            merged = merged.sort("_day", "_kind", "_order")
        merged.select(list(INVOICE_COLUMNS)).write_csv(self.invoices_fh, include_header=False)

    # -- payments -------------------------------------------------------------------
    def _flush_payments(self, day: int | None) -> None:
        batch = self.payments.pop_before(day)
        if not batch or not len(batch["date"]):
            return
        years = _year_of(batch["date"])
        seq = _sequence_in_year(years, self.pay_counters)
        inv_year, inv_seq = self.cal.invoice_numbers(batch["inv"])
        frame = pl.DataFrame(
            {
                "_year": years,
                "_seq": seq,
                "customer_id": self.cust.ids.gather(batch["cust"]),
                "date": _date_series("date", batch["date"]),
                "_amount": batch["amount"],
                "_inv_year": inv_year,
                "_inv_seq": inv_seq,
                "_ref": batch["ref"],
                "method": _METHOD_NAMES.gather(batch["method"]),
            }
        ).with_columns(
            _number_expr("P", "_year", "_seq").alias("payment_id"),
            _money_expr("_amount").alias("amount"),
            pl.lit(CURRENCY).alias("currency"),
            pl.when(pl.col("_ref"))
            .then(_number_expr("F", "_inv_year", "_inv_seq"))
            .otherwise(pl.lit(None, pl.String))
            .alias("invoice_number"),
        )
        self.totals.payments += frame.height
        self.totals.unreferenced += int((~batch["ref"]).sum())
        frame.select(list(PAYMENT_COLUMNS)).write_csv(self.payments_fh, include_header=False)

    def finish(self) -> None:
        self._write_documents(None, self._credit_notes_before(None))
        self._flush_payments(None)


def _header(columns: Sequence[str]) -> bytes:
    return (",".join(columns) + "\n").encode("utf-8")


def generate_portfolio(
    out_dir: Path,
    customers: int,
    invoices: int,
    seed: int,
    end: dt.date,
    months: int = 24,
    chunk_size: int = 100_000,
) -> GenerationSummary:
    """Write customers.csv, invoices.csv and payments.csv into `out_dir`.

    `invoices` counts the documents of type `invoice`; credit notes (about 3% of the
    documents) come on top. Issue dates are spread over the `months` months before `end`
    (`end` included). The output is byte-for-byte reproducible for the same arguments.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if invoices < 0:
        raise ValueError("invoices must not be negative")
    if seed < 0:
        raise ValueError("seed must not be negative")
    if months < 1:
        raise ValueError("months must be at least 1")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = _add_months(end, -months)
    rng_calendar, rng_customers, rng_invoices, rng_addresses = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    cal = _Calendar.build(rng_calendar, start, end, invoices)
    cust = _make_customers(rng_customers, customers, invoices, cal, months, rng_addresses)

    files = {name: out_dir / f"{name}.csv" for name in ("customers", "invoices", "payments")}
    with files["customers"].open("wb") as fh:
        fh.write(_header(CUSTOMER_COLUMNS))
        assert cust.frame is not None
        cust.frame.write_csv(fh, include_header=False)
        cust.frame = None

    with files["invoices"].open("wb") as inv_fh, files["payments"].open("wb") as pay_fh:
        inv_fh.write(_header(INVOICE_COLUMNS))
        pay_fh.write(_header(PAYMENT_COLUMNS))
        writer = _Writer(rng_invoices, cal, cust, inv_fh, pay_fh)
        for i0 in range(0, invoices, chunk_size):
            writer.chunk(i0, min(i0 + chunk_size, invoices))
        writer.finish()

    t = writer.totals
    cents = Decimal("0.01")
    segment_counts = np.bincount(cust.segment, minlength=len(SEGMENTS)).tolist()
    return GenerationSummary(
        out_dir=out_dir,
        seed=seed,
        start=start + dt.timedelta(days=1),
        end=end,
        customers=customers,
        invoices=t.invoices,
        credit_notes=t.credit_notes,
        payments=t.payments,
        split_invoices=t.split,
        unreferenced_payments=t.unreferenced,
        disputed_invoices=t.disputed,
        open_invoices=t.open,
        total_invoiced=Decimal(t.invoiced) * cents,
        total_credited=Decimal(t.credited) * cents,
        total_paid=Decimal(t.paid) * cents,
        outstanding=Decimal(t.invoiced - t.credited - t.paid) * cents,
        segments=dict(zip(SEGMENTS, segment_counts, strict=True)),
        files=files,
    )
