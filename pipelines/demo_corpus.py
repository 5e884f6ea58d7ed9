"""A seeded sample corpus in the sources' published formats, with planted defects whose ground truth is known.

``generate_demo_corpus`` writes, under one folder:

- ``stackexchange/<site>/Posts.xml`` and ``PostLinks.xml`` for two sites (the dump format, BOM included),
- ``quora/quora_duplicate_questions.tsv``,
- ``amazon/reviews_2018.json.gz`` (McAuley 2018 JSON lines, gzip as published) and
  ``amazon/reviews_2023.jsonl`` (2023 format),
- ``news/cnn_dailymail.jsonl`` (Hugging Face export: article, highlights, id),
- ``reddit/submissions.jsonl`` and ``reddit/comments.jsonl`` (Pushshift),
- ``ground_truth.json``: per source view (a file and the reader's pairing mode), the natural keys of the
  planted exact duplicates, near duplicates (with their word 5-gram Jaccard), non-English records and
  mismatched pairs, and how many pairs the reader should produce.

Text comes from topic vocabularies and sentence templates, so a query and its document share words and a
teacher's similarity means something. Everything is drawn from ``random.Random`` streams seeded by
``seed`` and the source's name: the same seed writes byte-identical files.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import html
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

NEAR_JACCARD = (0.85, 0.95)
SHINGLE_WORDS = 5
MAX_UNPLANTED_JACCARD = 0.45  # generated documents of one topic stay below this similarity unless planted
PLANT_RATES = {"exact_source": 0.05, "near_source": 0.05, "non_english": 0.05, "mismatched": 0.08}
# Base items per source at scale 1.0 (Stack Exchange: questions per site; Quora: rows, half of them duplicates).
BASE_COUNTS = {"stackexchange": 220, "quora": 800, "amazon_2018": 450, "amazon_2023": 450, "news": 300, "reddit": 480}
SITES = {"cooking": "cooking", "bicycles": "cycling"}  # site folder -> topic domain
LANGUAGES = ("fr", "de", "es")
MIN_ANSWER_SCORE = 1  # an unaccepted question's answers score >= 3 or <= 0, so any minimum in 1..3 counts the same

# name | subreddit | tags | things / actions / problems | facts   (items separated by commas)
TOPIC_TABLE = """
[cooking]
espresso | Coffee | espresso, extraction | portafilter, tamper, burr grinder, group head, espresso basket, milk jug
  pull a shot, dial in the grind, tamp the puck evenly, steam milk, descale the machine
  channeling, sour shots, a bitter aftertaste, thin crema | 9 bars of pressure, a 1:2 brew ratio, 18 g of coffee
pour-over coffee | pourover | pour-over, brewing | gooseneck kettle, paper filter, dripper, coffee scale, hand grinder
  bloom the grounds, pour in slow circles, rinse the filter, weigh the beans, grind medium-fine
  a stalled drawdown, muddy flavour, uneven extraction, weak coffee | water at 93 °C, a 1:16 ratio, a three minute brew
sourdough | Sourdough | sourdough, bread | starter, banneton, dutch oven, bench scraper, proofing box, lame
  feed the starter, shape the loaf, score the dough, proof overnight, bake with steam
  a dense crumb, a flat loaf, a gummy centre, a sluggish starter | 75% hydration, a 12 hour cold proof, 250 °C
knife sharpening | chefknives | knives, sharpening | whetstone, honing rod, chef's knife, angle guide, strop, paring knife
  sharpen a knife, hold a steady angle, raise a burr, hone the edge, flatten the stone
  a rolled edge, chipped steel, a dull blade, uneven bevels | a 15 degree angle, a 1000 grit stone, a 6000 grit finish
cast iron | castiron | cast-iron, seasoning | skillet, griddle, chain mail scrubber, flaxseed oil, dutch oven, lid
  season the skillet, strip old seasoning, sear a steak, dry the pan, bake the oil on
  rust spots, sticky seasoning, flaking black bits, food sticking | a thin coat of oil, an hour at 230 °C, three coats
rice | Cooking | rice, grains | rice cooker, heavy pot, fine sieve, wooden paddle, tight lid, measuring cup
  rinse the rice, cook basmati, steam sushi rice, fluff the grains, rest the pot
  mushy rice, a burnt bottom, hard grains, sticky clumps | a 1:1.5 water ratio, ten minutes of resting, a pinch of salt
eggs | Cooking | eggs, poaching | nonstick pan, slotted spoon, saucepan, timer, silicone spatula, ice bath
  poach an egg, boil eggs for peeling, fold an omelette, scramble eggs slowly, separate the yolks
  rubbery whites, shells that will not peel, a green ring, runny omelettes | a 6 minute boil, water just below simmer
stock | soup | stock, soup | stockpot, roasted bones, fine strainer, ladle, pressure cooker, fat separator
  make chicken stock, skim the foam, reduce the stock, roast the bones, freeze portions
  cloudy stock, a greasy surface, bland flavour, a burnt smell | a gentle simmer for six hours, a kilo of bones
deep frying | Cooking | frying, oil | deep fryer, thermometer, wire rack, spider strainer, peanut oil, batter
  fry chicken, keep the oil hot, double fry potatoes, filter the oil, make a light batter
  soggy batter, smoking oil, greasy chips, burnt outsides | oil at 180 °C, two rounds of frying, small batches
baking cakes | Baking | baking, cakes | stand mixer, cake tin, parchment paper, oven thermometer, spatula, cooling rack
  cream the butter, fold in the flour, level the cake, test for doneness, line the tin
  a sunken middle, a dry crumb, a domed top, a cake that sticks | 175 °C for 35 minutes, room temperature eggs
[cycling]
gears | bikewrench | drivetrain, shifting | rear derailleur, cassette, shifter cable, limit screw, barrel adjuster, chainring
  index the gears, adjust the derailleur, replace the cable, set the limit screws, shift under load
  skipping gears, ghost shifting, a noisy chain, slow shifts | an 11-speed cassette, a quarter turn of the adjuster
tyre pressure | cycling | tires, pressure | floor pump, pressure gauge, inner tube, valve core, 28 mm tyre, tyre lever
  set tyre pressure, check the pressure, fix a pinch flat, seat the tyre, pump a presta valve
  pinch flats, a harsh ride, slow leaks, squirmy cornering | 80 psi for a road tyre, 5 bar, 10% tyre drop
brakes | bikewrench | brakes, maintenance | brake pads, disc rotor, caliper, hydraulic hose, brake lever, bleed kit
  bleed the brakes, align the caliper, bed in new pads, true a rotor, replace worn pads
  squealing brakes, a spongy lever, rotor rub, weak stopping | a 0.2 mm rotor gap, 160 mm rotors, mineral oil
chain care | bikewrench | chain, maintenance | chain checker, chain lube, degreaser, quick link, chain tool, rag
  clean the chain, lube the chain, measure chain wear, break the chain, install a quick link
  a squeaky chain, chain suck, gritty shifting, a stretched chain | 0.5% wear limit, a drop of lube per roller
wheel truing | bikewrench | wheels, spokes | truing stand, spoke wrench, spoke nipple, rim, hub, tension meter
  true a wheel, tension the spokes, replace a spoke, dish the wheel, service the hub
  a wobbly rim, a broken spoke, loose spokes, a ticking sound | half a turn at a time, 32 spokes, 1 mm of wobble
saddle fit | bicycling | fit, saddle | saddle, seatpost, chamois, saddle rails, cleats, torque wrench
  set saddle height, tilt the saddle, move the saddle back, measure sit bones, adjust the cleats
  numb hands, knee pain, saddle sores, lower back ache | a 25 degree knee bend, 5 Nm on the rails
commuting | bikecommuting | commuting, lights | front light, mudguards, rain jacket, pannier, lock, dynamo hub
  ride to work in the rain, carry a laptop, lock the bike, fit mudguards, stay visible at night
  soaked trousers, a stolen wheel, dim lights, sweaty shirts | 400 lumens, a 20 km round trip, two locks
tubeless tyres | bikewrench | tubeless, tires | tubeless sealant, rim tape, tubeless valve, compressor, tyre plug, booster pump
  set up tubeless, top up the sealant, seat the bead, plug a puncture, tape the rim
  burping tyres, dried sealant, a bead that will not seat, weeping sidewalls | 60 ml of sealant, refills every three months
bottom bracket | bikewrench | bottom-bracket, cranks | bottom bracket, crank arm, press fit cups, bearing press, crank puller, grease
  remove the cranks, press in bearings, grease the threads, replace the bottom bracket, torque the crank bolts
  a creaking bottom bracket, gritty bearings, crank play, a clicking noise | 40 Nm on the crank bolt, a BSA thread
suspension fork | MTB | suspension, fork | suspension fork, shock pump, rebound dial, fork seals, stanchions, volume spacer
  set the sag, adjust rebound, service the lower legs, add a volume spacer, clean the stanchions
  a harsh fork, leaking seals, bottoming out, a bouncy ride | 20% sag, a 50 hour lower leg service
[products]
wireless headphones | headphones | audio | ear cushions, battery, bluetooth pairing, noise cancelling, charging case, microphone
  listen on the train, take calls, block out office noise, pair with a laptop, watch films on a plane
  crackling audio, a dead left earbud, a loose hinge, dropouts | 30 hours of battery life, USB-C charging
running shoes | RunningShoeGeeks | shoes | cushioning, outsole, heel counter, toe box, laces, insole
  run a half marathon, train on trails, jog every morning, run in the rain, walk all day
  blisters, a worn heel, sore arches, slipping laces | an 8 mm drop, 250 g per shoe, a wide toe box
coffee grinder | Coffee | grinders | burrs, hopper, grind dial, motor, catch cup, static guard
  grind for espresso, grind for a french press, switch grind sizes, clean the burrs, weigh each dose
  clumping grounds, a jammed motor, static mess, uneven grounds | 40 mm conical burrs, 60 grind settings
yoga mat | yoga | fitness | mat surface, carry strap, foam layer, alignment lines, rubber base, towel
  hold a downward dog, practise at home, take it to class, do hot yoga, stretch after running
  a slippery surface, a chemical smell, curling edges, peeling foam | 6 mm thickness, 183 cm length
phone case | PhoneCases | accessories | bumper, camera lip, button covers, clear back, magnets, screen protector
  protect the phone, charge wirelessly, drop it on concrete, grip it one handed, fit a card
  yellowing plastic, loose buttons, scratched corners, a weak magnet | 3 metre drop rating, 1.5 mm raised edges
hiking backpack | CampingGear | outdoors | hip belt, shoulder straps, rain cover, hydration sleeve, frame sheet, zips
  hike for three days, carry a tent, pack a sleeping bag, adjust the torso length, walk uphill
  sore shoulders, a broken zip, a sweaty back, torn mesh | a 45 litre capacity, 1.3 kg empty weight
blender | Cooking | kitchen | jug, blades, motor base, tamper stick, lid seal, pulse button
  make smoothies, crush ice, blend soup, make nut butter, clean the jug
  a leaking lid, a burning smell, chunks of ice left, a loud motor | a 1200 watt motor, a 2 litre jug
desk lamp | battlestations | lighting | lamp arm, dimmer, LED panel, clamp, colour temperature, USB port
  light the desk, read at night, dim for video calls, clamp it to a shelf, charge a phone
  flicker, a wobbly arm, harsh glare, a buzzing dimmer | 3000 K to 6500 K, 10 brightness levels
electric toothbrush | BuyItForLife | personal-care | brush head, charger, pressure sensor, timer, travel case, battery
  brush for two minutes, clean around braces, travel for a week, replace the heads, charge it overnight
  a dying battery, a loose head, weak vibration, a rattling handle | 31000 strokes a minute, a 3 week battery
mechanical keyboard | MechanicalKeyboards | keyboards | switches, keycaps, stabilisers, cable, backlight, wrist rest
  type all day, game at night, swap the switches, clean under keycaps, program macros
  chattering keys, a rattling space bar, faded legends, dead switches | hot-swappable sockets, tactile brown switches
air fryer | airfryer | kitchen | basket, crisper plate, timer dial, heating element, nonstick coating, fan
  cook frozen chips, roast vegetables, reheat pizza, bake salmon, make chicken wings
  peeling coating, uneven cooking, a plastic smell, a loud fan | a 5.5 litre basket, 200 °C for 15 minutes
robot vacuum | RobotVacuums | home | side brush, dust bin, charging dock, mapping sensor, app, mop pad
  clean under the sofa, map the flat, empty the bin, schedule cleaning, handle pet hair
  tangled brushes, a lost map, getting stuck on rugs, weak suction | 120 minutes of runtime, 2500 Pa suction
[general]
learning to code | learnprogramming | programming | Python course, code editor, side project, debugger, GitHub profile, textbook
  learn Python, build a portfolio, fix bugs faster, practise every day, get a first developer job
  tutorial hell, losing motivation, confusing error messages, impostor syndrome | an hour of practice a day
personal investing | personalfinance | investing | index fund, pension, emergency fund, brokerage account, bond fund, savings account
  start investing, pay off debt, build an emergency fund, pick an index fund, save for a house
  high fees, panic selling, credit card debt, lifestyle creep | a 0.2% expense ratio, six months of expenses
travel visas | travel | travel, visas | passport, visa application, embassy appointment, travel insurance, bank statement, itinerary
  apply for a visa, renew a passport, book an embassy appointment, extend a tourist visa, travel on a layover
  a refused visa, long processing times, overstay fines, missing documents | a 90 day limit, 15 working days
language learning | languagelearning | languages | flashcard app, grammar book, language exchange, tutor, podcast, phrase book
  learn Spanish, practise speaking, remember vocabulary, understand native speakers, think in French
  forgetting words, fear of speaking, a plateau, a strong accent | 20 new words a day, 30 minutes of listening
job interviews | careerguidance | careers | CV, cover letter, reference, salary range, portfolio, interview panel
  prepare for an interview, negotiate a salary, answer behavioural questions, follow up after an interview, change careers
  interview nerves, a gap in the CV, low offers, ghosting recruiters | the STAR method, a 10% raise
weight training | Fitness | fitness, strength | barbell, squat rack, dumbbells, protein shake, lifting belt, training log
  squat with good form, build muscle, increase the bench press, recover between sessions, deadlift safely
  lower back pain, stalled progress, sore knees, poor sleep | three sets of eight, 1.6 g of protein per kg
growing tomatoes | gardening | gardening, vegetables | seedlings, grow bag, tomato cage, compost, watering can, greenhouse
  grow tomatoes, prune the side shoots, water in hot weather, harden off seedlings, feed the plants
  blossom end rot, split fruit, yellow leaves, blight | a deep water twice a week, 60 cm between plants
home wifi | HomeNetworking | networking, wifi | router, mesh node, ethernet cable, access point, modem, network switch
  extend the wifi, set up a mesh network, run ethernet upstairs, reduce lag, secure the network
  dead zones, dropped connections, slow speeds, interference | 5 GHz band, a 300 Mbps line
"""

# Templates in one group ask the same thing, so two of them make a duplicate-question pair.
TITLE_GROUPS = [
    ["How do I {action}?", "What is the best way to {action}?", "What is the easiest way to {action}?",
     "How should a beginner {action}?"],
    ["What causes {problem}?", "Why do I keep getting {problem}?", "Where does {problem} come from?"],
    ["Is a better {thing} worth it?", "Should I upgrade my {thing}?", "Is it worth spending money on a new {thing}?"],
    ["How do I {action} without {problem}?", "How can I {action} and avoid {problem}?",
     "What should I change to {action} without {problem}?"],
    ["Does the {thing} matter when you {action}?", "How much does the {thing} affect how you {action}?"],
    ["Is {fact} right when I {action}?", "Should I aim for {fact} when I {action}?"],
]
REDDIT_TITLES = ["Finally managed to {action}!", "PSA: check your {thing} if you get {problem}",
                 "[Help] {problem} with my {thing}", "First attempt to {action}, feedback welcome"]
BODY = """
I have been trying to {action} for {n} weeks, but I keep running into {problem}.
My {thing} is fairly new and the {thing2} looks fine to me.
Everything I read says to aim for {fact}, but that has not helped so far.
I already tried to {action2}, but I still get {problem}.
Is the {thing} the problem, or am I doing something wrong when I {action}?
Any tips on how to {action} would be appreciated.
I would rather not buy a new {thing2} unless I really have to.
For context, I {action2} about {n} times a month and never had {problem} before.
A friend suggested swapping the {thing} for a cheaper one, which sounds odd to me.
Last weekend I spent an afternoon trying to {action} and ended up with {problem} again.
"""
ANSWER = """
The most common cause of {problem} is a worn or badly set {thing}.
Start by checking the {thing}, and replace it if it looks damaged.
Aim for {fact} and change one thing at a time.
Once you {action} consistently, {problem} usually goes away.
A decent {thing2} makes a bigger difference than most people expect.
I had the same issue with my {thing}, and it turned out to be the {thing2}.
Do not rush when you {action2}, because that is exactly what leads to {problem}.
If you still get {problem} after that, ask someone experienced to look at the {thing}.
In my experience {fact} works well for most people.
Keep notes every time you {action}, so you can see what actually changed.
Watch a couple of videos on how to {action2} before you spend money on a new {thing}.
It took me {n} attempts to {action} properly, so do not give up after the first try.
"""
REVIEW_GOOD = """
I bought this {product} to {action} and the {thing} does the job well.
The {thing} feels solid, and {fact} is exactly as advertised.
I have used it to {action2} for {n} weeks now and never had {problem}.
Would recommend it to anyone who wants to {action2}, especially for the {thing2}.
Setting up the {thing2} took a couple of minutes, and then I could {action}.
My old one gave me {problem}, and this one with its {thing} fixed that completely.
It arrived a day early and the {thing2} was well packed next to the {thing}.
We use the {thing} every day to {action2} and it still looks new after {n} months.
Compared with my last {product}, {fact} and the {thing2} make a real difference.
"""
REVIEW_BAD = """
After {n} weeks of trying to {action} I started getting {problem}.
The {thing} feels cheap, and the {thing2} broke far too quickly.
For the price I expected better than {problem} from the {thing}.
I returned it because I could not {action} without {problem}.
The listing promised {fact}, but the {thing} never came close.
Customer service took {n} days to reply about the {thing2} and {problem}.
Within a month the {thing2} looked worn out and I gave up trying to {action2}.
I wanted something to {action}, but this {product} and its {thing} are not it.
Two stars only because the {thing2} still works when I {action2}.
"""
REVIEW_TITLE_GOOD = ["Great {product} for the price", "Does exactly what I needed", "Perfect to {action}",
                     "Solid {thing}, very happy", "Best {product} I have owned", "Five Stars", "Love it"]
REVIEW_TITLE_BAD = ["Stopped working after {n} weeks", "Disappointed with the {thing}", "{problem} after a month",
                    "Not worth it", "One Star"]
OPENERS = ["Honestly, ", "In my experience, ", "For what it is worth, ", "To be fair, ", "Also, ",
           "As far as I can tell, ", "Funnily enough, "]

# event | article sentences | "=" highlights; the slots are filled once per article so highlights repeat its facts.
NEWS_EVENTS = """
earthquake
  A magnitude {mag} earthquake struck near {city} early on {day}, killing at least {count} people.
  Rescue teams led by {name} worked through the night to reach families trapped under collapsed flats.
  The quake was felt {count2} kilometres away, according to the national seismology institute of {country}.
  = Magnitude {mag} earthquake strikes near {city}, {country}
  = At least {count} people killed, rescue chief {name} says
election
  Voters in {country} handed {name} a surprise victory on {day}, with {pct} percent of the vote counted by midnight.
  {name} told supporters in {city} that the result was a mandate to cut taxes and rebuild public services.
  Turnout reached {count} thousand in the capital region, the highest figure since {year}.
  = {name} wins the presidential election in {country} with {pct}% of the vote
  = Turnout in the capital region was the highest since {year}
football
  {city} won the cup final on {day} after {name} scored twice in the last {pct} minutes.
  Coach {name2} said the squad had believed in the comeback even when they trailed at half-time.
  More than {count} thousand fans filled the stadium, and thousands more watched on screens across {country}.
  = {name} scores twice as {city} win the cup final
  = Coach {name2} praises the squad's belief after the comeback
earnings
  Shares in the {city}-based retailer fell {pct} percent on {day} after it reported a quarterly loss of {money}.
  Chief executive {name} blamed rising energy costs and weak demand in {country}.
  The company said it would close {count} stores and cut about {count2} jobs by the end of next year.
  = Retailer's shares fall {pct}% after a quarterly loss of {money}
  = CEO {name} says {count} stores will close and {count2} jobs will go
rocket
  A rocket carrying {count} small satellites lifted off near {city} on {day}, the first such mission from {country}.
  Mission director {name} said all satellites separated as planned about {pct} minutes after launch.
  The launch had been delayed twice since {year} because of funding problems and engine tests.
  = Rocket with {count} satellites launches from near {city}
  = First mission of its kind from {country}, director {name} says
wildfire
  A wildfire that broke out near {city} on {day} has burned {count} hectares and forced {count2} people from their homes.
  Fire chief {name} said strong winds and temperatures above {pct} degrees made the blaze hard to contain.
  Authorities in {country} have asked neighbouring countries for water-bombing planes.
  = Wildfire near {city} burns {count} hectares
  = {count2} people evacuated as fire chief {name} warns of strong winds
court
  A court in {city} on {day} sentenced former minister {name} to {pct} years in prison for taking bribes worth {money}.
  Judge {name2} said the evidence showed a pattern of corruption that had lasted since {year}.
  Lawyers for {name} said they would appeal to the supreme court of {country}.
  = Former minister {name} jailed for {pct} years over bribes worth {money}
  = Judge {name2} says the corruption went on since {year}
study
  A study of {count} thousand adults in {country} found that walking {pct} minutes a day cut heart disease risk by a fifth.
  Lead author {name}, of a university hospital in {city}, said the benefit appeared even in people who started late.
  The researchers followed the participants from {year} and adjusted for diet, smoking and income.
  = Walking {pct} minutes a day cuts heart disease risk by a fifth, study finds
  = Researchers led by {name} followed {count} thousand adults in {country}
flood
  Heavy rain made the river burst its banks in {city} on {day}, flooding {count} homes and cutting power to {count2} households.
  Mayor {name} said it was the worst flooding the town had seen since {year}.
  Forecasters in {country} warned that another {pct} millimetres of rain could fall before the weekend.
  = River floods {count} homes in {city}, {country}
  = Mayor {name} calls it the worst flooding since {year}
auction
  A painting that hung for decades in a farmhouse near {city} sold for {money} at auction on {day}.
  The seller, {name}, said the family had no idea of its value until an expert visited in {year}.
  The buyer, a collector from {country}, outbid {count} other bidders in a sale that lasted {pct} minutes.
  = Painting found in a farmhouse near {city} sells for {money}
  = Owner {name} says the family did not know its value until {year}
"""
NEWS_FILLERS = """
{name2}, who has followed the story for years, said the mood in {city} had changed since {year}.
Officials said more details would be released on {day}.
Local media in {country} reported that {count2} people had gathered outside the town hall by the afternoon.
"Nobody here expected this," {name2} told CNN.
The figures could not be independently verified by CNN.
Critics said the response from the authorities in {country} had been too slow.
It is the first time since {year} that {city} has seen anything on this scale.
{name} is expected to speak to reporters again later this week.
Residents described a tense night, with roads around the centre of {city} closed until the morning.
Analysts said the events of {day} would be debated for months.
CNN's {name2} contributed to this report.
"""
FIRST_NAMES = "Maria James Amira Lukas Sofia Daniel Chen Fatima Oliver Ana Tomas Priya Kwame Elena Hiro Grace".split()
LAST_NAMES = "Okafor Lindqvist Moreau Haddad Kowalski Santos Brennan Nakamura Ferreira Novak Osei Petrov Romero".split()
CITIES = [("Lyon", "France"), ("Porto", "Portugal"), ("Krakow", "Poland"), ("Valencia", "Spain"), ("Leipzig", "Germany"),
          ("Naples", "Italy"), ("Izmir", "Turkey"), ("Osaka", "Japan"), ("Cebu", "the Philippines"), ("Mombasa", "Kenya"),
          ("Curitiba", "Brazil"), ("Adelaide", "Australia"), ("Halifax", "Canada"), ("Tucson", "the United States")]
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()

# Real sentences per language: "?" question titles, "-" statements, "!" short review titles.
FOREIGN_TABLE = """
[fr]
? Comment puis-je éviter que mon pain soit trop dense ?
? Quelle est la meilleure façon de régler les freins de mon vélo ?
? Est-ce que ce casque vaut vraiment son prix ?
? Pourquoi mon café a-t-il un goût si amer le matin ?
? Faut-il changer la chaîne après trois mille kilomètres ?
- J'ai essayé plusieurs méthodes pendant des semaines, mais le résultat reste décevant.
- Le produit est arrivé rapidement et il fonctionne très bien depuis un mois.
- Il vaut mieux vérifier la pression des pneus avant chaque sortie.
- La qualité de fabrication est correcte, mais la batterie se décharge trop vite.
- Les autorités ont annoncé mardi que les travaux dureront encore deux ans.
- Je vous conseille de laisser reposer la pâte toute une nuit au réfrigérateur.
- Merci d'avance pour vos conseils, je débute et je ne sais pas par où commencer.
- Selon plusieurs témoins, l'incendie s'est déclaré en fin d'après-midi près de la gare.
! Très bon produit
! Je recommande
! Déçu par la qualité
[de]
? Wie kann ich verhindern, dass mein Brot innen feucht bleibt?
? Welcher Reifendruck ist für ein Trekkingrad am besten?
? Lohnt sich dieser Kopfhörer für den täglichen Weg zur Arbeit?
? Warum schmeckt mein Espresso so sauer?
? Muss ich die Kette nach dem Winter wirklich wechseln?
- Ich habe verschiedene Methoden ausprobiert, aber das Ergebnis ist immer noch enttäuschend.
- Das Produkt kam schnell an und funktioniert seit einem Monat ohne Probleme.
- Am besten prüfst du vor jeder Fahrt den Luftdruck und die Bremsen.
- Die Verarbeitung ist ordentlich, aber der Akku hält leider nicht lange.
- Die Behörden teilten am Dienstag mit, dass die Bauarbeiten noch zwei Jahre dauern werden.
- Lass den Teig am besten über Nacht im Kühlschrank ruhen.
- Vielen Dank im Voraus, ich bin Anfänger und weiß nicht, wo ich anfangen soll.
- Nach Angaben von Zeugen brach das Feuer am späten Nachmittag in der Nähe des Bahnhofs aus.
! Sehr gutes Produkt
! Klare Empfehlung
! Leider enttäuscht
[es]
? ¿Cómo puedo evitar que el pan quede demasiado denso?
? ¿Cuál es la mejor manera de ajustar los frenos de mi bicicleta?
? ¿De verdad vale la pena comprar estos auriculares?
? ¿Por qué mi café sabe tan amargo por la mañana?
? ¿Hay que cambiar la cadena después de tres mil kilómetros?
- He probado varios métodos durante semanas, pero el resultado sigue siendo decepcionante.
- El producto llegó rápido y funciona muy bien desde hace un mes.
- Lo mejor es revisar la presión de los neumáticos antes de cada salida.
- La calidad de fabricación es buena, pero la batería se descarga demasiado rápido.
- Las autoridades anunciaron el martes que las obras durarán dos años más.
- Te recomiendo dejar reposar la masa toda la noche en la nevera.
- Gracias de antemano por los consejos, soy principiante y no sé por dónde empezar.
- Según varios testigos, el incendio comenzó a última hora de la tarde cerca de la estación.
! Muy buen producto
! Lo recomiendo
! Decepcionado con la calidad
"""
EDIT_WORDS = ["really", "quite", "also", "actually", "basically", "just", "definitely", "probably"]


@dataclass(frozen=True)
class Topic:
    name: str
    subreddit: str
    tags: list[str]
    things: list[str]
    actions: list[str]
    problems: list[str]
    facts: list[str]


def _parse_topics(table: str) -> dict[str, list[Topic]]:
    blocks: dict[str, list[str]] = {}
    for line in table.strip().splitlines():
        if line.startswith("["):
            domain = line.strip("[]")
            blocks[domain] = []
        elif line.startswith(" "):
            blocks[domain][-1] += " | " + line.strip()
        else:
            blocks[domain].append(line)
    topics = {}
    for domain, rows in blocks.items():
        fields = [[part.strip() for part in row.split("|")] for row in rows]
        topics[domain] = [Topic(name, sub, *([item.strip() for item in part.split(",")] for part in rest))
                          for name, sub, *rest in fields]
    return topics


def _parse_foreign(table: str) -> dict[str, dict[str, list[str]]]:
    kinds = {"?": "question", "-": "statement", "!": "short"}
    out: dict[str, dict[str, list[str]]] = {}
    for line in table.strip().splitlines():
        if line.startswith("["):
            lang = line.strip("[]")
            out[lang] = {kind: [] for kind in kinds.values()}
        else:
            out[lang][kinds[line[0]]].append(line[2:])
    return out


def _parse_events(table: str) -> dict[str, tuple[list[str], list[str]]]:
    events: dict[str, tuple[list[str], list[str]]] = {}
    for line in table.strip().splitlines():
        if not line.startswith(" "):
            events[line] = ([], [])
        elif line.strip().startswith("= "):
            events[list(events)[-1]][1].append(line.strip()[2:])
        else:
            events[list(events)[-1]][0].append(line.strip())
    return events


def _lines(block: str) -> list[str]:
    return [line for line in block.strip().splitlines()]


TOPICS = _parse_topics(TOPIC_TABLE)
FOREIGN = _parse_foreign(FOREIGN_TABLE)
EVENTS = _parse_events(NEWS_EVENTS)


def document_words(text: str) -> list[str]:
    """Lowercased word tokens of a text, after dropping HTML tags and unescaping entities."""
    return re.findall(r"\w+", html.unescape(re.sub(r"<[^>]+>", " ", text)).lower())


def shingles(text: str, n: int = SHINGLE_WORDS) -> set[tuple[str, ...]]:
    """The set of word n-grams of a text (see ``document_words``); a text shorter than n is one shingle."""
    words = document_words(text)
    return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def shingle_jaccard(a: str, b: str, n: int = SHINGLE_WORDS) -> float:
    """Jaccard similarity of the word n-gram shingle sets of two texts."""
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def _too_close(a: set, b: set) -> bool:
    shared = len(a & b)
    return shared >= MAX_UNPLANTED_JACCARD * (len(a) + len(b) - shared)


class _Writer:
    """Sentences and documents about one topic, drawn from one seeded random stream."""

    def __init__(self, rng: random.Random, distinct: bool = True):
        """``distinct``: keep documents apart (see ``sentences``); off for streams that must not grow in memory."""
        self.rng = rng
        self.distinct = distinct
        self.foreign_used: set[tuple[str, ...]] = set()
        self.used_sentences: set[str] = set()
        self.topic_shingles: dict[str, list[set[tuple[str, ...]]]] = defaultdict(list)

    def slots(self, topic: Topic) -> dict[str, str]:
        thing, thing2 = self.rng.sample(topic.things, 2)
        action, action2 = self.rng.sample(topic.actions, 2)
        return {"thing": thing, "thing2": thing2, "action": action, "action2": action2, "product": topic.name,
                "problem": self.rng.choice(topic.problems), "fact": self.rng.choice(topic.facts),
                "n": str(self.rng.randint(2, 12))}

    def sentence(self, template: str, slots: dict[str, str], opener: bool = False) -> str:
        text = template.format(**slots)
        if opener and self.rng.random() < 0.2:
            text = self.rng.choice(OPENERS) + (text if text.startswith("I ") else text[0].lower() + text[1:])
        return text[0].upper() + text[1:]

    def sentences(self, templates: list[str], topic: Topic, count: int, intent: dict[str, str]) -> list[str]:
        """``count`` sentences; most share the intent's thing, action and problem so the document stays on it.

        Sentences already written are avoided while the templates offer others, and a draw that comes too close
        to an earlier document of the topic is redrawn: ordinary documents must not look like near duplicates.
        """
        earlier = self.topic_shingles[topic.name]
        for _ in range(50):
            picks = self.rng.sample(templates, min(count, len(templates)))
            picks += [self.rng.choice(templates) for _ in range(count - len(picks))]
            cores, out = [], []
            for template in picks:
                for _ in range(5):
                    slots = self.slots(topic)
                    if self.rng.random() < 0.6:
                        slots.update({key: intent[key] for key in ("thing", "action", "problem")})
                        if slots["thing2"] == slots["thing"]:
                            slots["thing2"] = next(t for t in topic.things if t != slots["thing"])
                    core = template.format(**slots)
                    if not self.distinct or core not in self.used_sentences:
                        break
                cores.append(core)
                out.append(self.sentence(template, slots, opener=True))
            if not self.distinct:
                return out
            made = shingles(" ".join(out))
            if not any(_too_close(made, other) for other in earlier):
                break
        self.used_sentences.update(cores)
        earlier.append(made)
        return out

    def paragraphs(self, sentences: list[str]) -> list[str]:
        out, i = [], 0
        while i < len(sentences):
            size = self.rng.randint(1, 3)
            out.append(" ".join(sentences[i:i + size]))
            i += size
        return out

    def foreign(self, lang: str, kind: str) -> str:
        return self.rng.choice(FOREIGN[lang][kind])

    def foreign_statements(self, lang: str, count: int) -> list[str]:
        """Statements in ``lang`` in an order no earlier call returned."""
        for _ in range(1000):
            made = tuple(self.rng.sample(FOREIGN[lang]["statement"], count))
            if made not in self.foreign_used:
                self.foreign_used.add(made)
                return list(made)
        raise RuntimeError(f"the {lang} sentences ran out of distinct documents")

    def title(self, topic: Topic, slots: dict[str, str], group: int | None = None) -> tuple[str, int]:
        group = self.rng.randrange(len(TITLE_GROUPS)) if group is None else group
        return self.sentence(self.rng.choice(TITLE_GROUPS[group]), slots), group


def _near_duplicate(rng: random.Random, paragraphs: list[str]) -> list[str]:
    """A copy with word edits and a truncated end, at a word 5-gram Jaccard inside NEAR_JACCARD."""
    low, high = NEAR_JACCARD
    target = rng.uniform(low, high)
    original = " ".join(paragraphs)
    original_shingles = shingles(original)
    words = [p.split(" ") for p in paragraphs]
    similarity, failures = 1.0, 0
    while similarity > target and failures < 50:
        trial = [list(p) for p in words]
        paragraph = trial[rng.randrange(len(trial))]
        op = rng.choice(("substitute", "insert", "delete", "truncate")) if similarity > target + 0.03 else "truncate"
        if op == "truncate":
            paragraph = trial[-1]
            paragraph.pop()
        elif op == "insert":
            paragraph.insert(rng.randrange(len(paragraph) + 1), rng.choice(EDIT_WORDS))
        elif op == "delete":
            paragraph.pop(rng.randrange(len(paragraph)))
        else:
            paragraph[rng.randrange(len(paragraph))] = rng.choice(EDIT_WORDS)
        trial = [p for p in trial if p]
        edited = shingles(" ".join(" ".join(p) for p in trial))
        score = len(edited & original_shingles) / len(edited | original_shingles)
        if score >= low:
            words, similarity, failures = trial, score, 0
        else:
            failures += 1
    if similarity > high:
        raise ValueError(f"document too short for a near duplicate: {len(document_words(original))} words")
    return [" ".join(p) for p in words]


def _plan(rng: random.Random, n: int, near: bool = True) -> list[str]:
    """Kinds of n base items: clean, the source of an exact or near copy, non-English, or mismatched."""
    kinds = [kind for kind, rate in PLANT_RATES.items() if near or kind != "near_source"
             for _ in range(max(1, round(n * rate)))]
    kinds += ["clean"] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _epoch(year: int, month: int = 1) -> float:
    return datetime(year, month, 1, tzinfo=timezone.utc).timestamp()


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


@dataclass
class _View:
    """Ground truth of one source view: a file read in one pairing mode."""

    file: str
    kind: str
    mode: str
    pairs: int = 0
    entries: list[tuple[str, Any, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def plant(self, category: str, item: Any, value: Any) -> None:
        self.entries.append((category, item, value))

    def near(self, item: Any, original: Any, document: str, original_document: str) -> None:
        self.plant("near_duplicates", item, (original, round(shingle_jaccard(document, original_document), 4)))

    def as_json(self, key: Callable[[Any], str]) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "kind": self.kind, "mode": self.mode, "pairs": self.pairs,
                               "exact_duplicates": {}, "near_duplicates": {}, "non_english": {}, "mismatched": {}}
        for category, item, value in self.entries:
            if category == "exact_duplicates":
                value = key(value)
            elif category == "near_duplicates":
                value = {"original": key(value[0]), "jaccard": value[1]}
            out[category][key(item)] = value
        return {**out, **self.notes}


# ---------------------------------------------------------------- Stack Exchange

@dataclass(eq=False)
class _Post:
    t: float
    type_id: int
    paragraphs: list[str]
    body: str
    score: int
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    parent: _Post | None = None
    answers: list[_Post] = field(default_factory=list)
    accepted: _Post | None = None
    id: int = 0


_XML_ESCAPES = [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("\n", "&#xA;"), ("\r", "&#xD;")]
_XML_HEAD = '\ufeff<?xml version="1.0" encoding="utf-8"?>\n<{root}>\n'


def _xml_attribute(value: Any) -> str:
    """An attribute value escaped the way the dumps do (newlines as &#xA;)."""
    text = str(value)
    for plain, escaped in _XML_ESCAPES:
        text = text.replace(plain, escaped)
    return text


def _xml_row(attributes: dict[str, Any]) -> str:
    pairs = (f'{name}="{_xml_attribute(value)}"' for name, value in attributes.items() if value is not None)
    return "  <row " + " ".join(pairs) + " />\n"


def _se_html(w: _Writer, topic: Topic, paragraphs: list[str], code: bool = False) -> str:
    """The Body HTML: paragraphs with some inline markup, a link, and optionally a <pre><code> block."""
    parts = []
    for text in paragraphs:
        text = html.escape(text, quote=False)
        marked = [phrase for phrase in topic.things + topic.facts if html.escape(phrase, quote=False) in text]
        if marked and w.rng.random() < 0.35:
            phrase = html.escape(w.rng.choice(marked), quote=False)
            tag = w.rng.choice(("strong", "em", "code", "a"))
            opening = f'<a href="https://example.org/wiki/{phrase.replace(" ", "_")}" rel="nofollow">' if tag == "a" \
                else f"<{tag}>"
            text = text.replace(phrase, f"{opening}{phrase}</{tag}>", 1)
        parts.append(f"<p>{text}</p>\n")
    if code and len(parts) > 1:
        lines = "\n".join(f"{thing}: {fact}" for thing, fact in zip(topic.things, w.rng.sample(topic.facts, 2)))
        parts.insert(1, f"<pre><code>{html.escape(lines, quote=False)}\n</code></pre>\n")
    return "\n".join(parts)


def _se_post(w: _Writer, topic: Topic, t: float, paragraphs: list[str], score: int, code: bool = False, **kw) -> _Post:
    return _Post(t=t, type_id=kw.pop("type_id", 2), paragraphs=paragraphs, body=_se_html(w, topic, paragraphs, code),
                 score=score, **kw)


def _se_question(w: _Writer, topic: Topic, t: float, *, long: bool = False,
                 slots: dict[str, str] | None = None, group: int | None = None) -> tuple[_Post, dict[str, str], int]:
    slots = slots or w.slots(topic)
    title, group = w.title(topic, slots, group)
    body = w.paragraphs(w.sentences(_lines(BODY), topic, w.rng.randint(9, 10) if long else
                                    w.rng.randint(2, 5), slots))
    tags = w.rng.sample(topic.tags, w.rng.randint(1, len(topic.tags)))
    question = _se_post(w, topic, t, body, w.rng.randint(-1, 40), type_id=1, title=title, tags=tags)
    return question, slots, group


def _se_answer(w: _Writer, topic: Topic, question: _Post, slots: dict[str, str], score: int,
               long: bool = False) -> _Post:
    sentences = w.sentences(_lines(ANSWER), topic, w.rng.randint(10, 12) if long else
                            w.rng.randint(2, 6), slots)
    answer = _se_post(w, topic, question.t + w.rng.uniform(60, 30 * 86400), w.paragraphs(sentences), score,
                      code=not long and w.rng.random() < 0.15, parent=question)
    question.answers.append(answer)
    return answer


def _se_answers(w: _Writer, topic: Topic, question: _Post, slots: dict[str, str], accepted: bool) -> None:
    """1-4 answers with one accepted; or, unaccepted, answers scoring >= 3 or all <= 0 (or none)."""
    if accepted or w.rng.random() < 0.75:
        for _ in range(w.rng.randint(1, 4)):
            _se_answer(w, topic, question, slots, w.rng.randint(3, 30) if not accepted else w.rng.randint(-1, 30))
        if accepted:
            question.accepted = w.rng.choice(question.answers)
    else:
        for _ in range(w.rng.randint(0, 2)):
            _se_answer(w, topic, question, slots, w.rng.randint(-2, 0))


def _clean_thread(w: _Writer, topic: Topic, t: float) -> tuple[_Post, dict[str, str], int]:
    question, slots, group = _se_question(w, topic, t)
    _se_answers(w, topic, question, slots, accepted=w.rng.random() < 0.7)
    return question, slots, group


def _number_posts(rng: random.Random, questions: list[_Post], others: list[_Post], first_id: int) -> list[_Post]:
    """Questions, their answers and other posts in time order, with ascending ids (and the gaps deleted posts leave)."""
    posts = sorted(questions + [a for q in questions for a in q.answers] + others, key=lambda p: p.t)
    next_id = first_id
    for post in posts:
        post.id = next_id
        next_id += 1 if rng.random() < 0.9 else rng.randint(2, 4)
    return posts


def _content_license(t: float) -> str:
    return "CC BY-SA 2.5" if t < _epoch(2011, 4) else "CC BY-SA 3.0" if t < _epoch(2018, 5) else "CC BY-SA 4.0"


def _stamp(t: float) -> str:
    return _utc(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _post_row(rng: random.Random, post: _Post) -> str:
    last = max([post.t] + [a.t for a in post.answers])
    owner = {"OwnerUserId": rng.randint(2, 40000)} if rng.random() < 0.95 else {"OwnerDisplayName": "user" + str(rng.randint(100, 9999))}
    attributes: dict[str, Any] = {"Id": post.id, "PostTypeId": post.type_id,
                                  "AcceptedAnswerId": post.accepted.id if post.accepted else None,
                                  "ParentId": post.parent.id if post.parent else None,
                                  "CreationDate": _stamp(post.t), "Score": post.score}
    if post.type_id == 1:
        attributes["ViewCount"] = rng.randint(20, 90000)
    attributes.update({"Body": post.body, **owner, "LastActivityDate": _stamp(last)})
    if post.type_id == 1:
        attributes.update({"Title": post.title, "Tags": "".join(f"<{tag}>" for tag in post.tags),
                           "AnswerCount": len(post.answers)})
    attributes.update({"CommentCount": rng.randint(0, 6), "ContentLicense": _content_license(post.t)})
    return _xml_row(attributes)


def _tag_wiki(w: _Writer, topic: Topic, t: float) -> list[_Post]:
    """A tag's excerpt (PostTypeId 4, plain text) and wiki (PostTypeId 5, HTML)."""
    slots = w.slots(topic)
    excerpt = f"Questions about {topic.tags[0]}: how to {slots['action']}, {slots['problem']} and choosing a {slots['thing']}."
    wiki = [excerpt, w.sentence(_lines(ANSWER)[2], slots)]
    return [_Post(t=t, type_id=4, paragraphs=[excerpt], body=excerpt, score=0),
            _se_post(w, topic, t, wiki, 0, type_id=5)]


def _stackexchange_site(rng: random.Random, site: str, topics: list[Topic], n: int) -> tuple[str, str, dict]:
    """Posts.xml and PostLinks.xml text of one site, and the ground truth of its three views."""
    w = _Writer(rng)
    folder = f"stackexchange/{site}"
    title_body = _View(f"{folder}/Posts.xml", "stackexchange", "title_body")
    question_answer = _View(f"{folder}/Posts.xml", "stackexchange", "question_answer",
                            notes={"min_answer_score": MIN_ANSWER_SCORE})
    duplicates = _View(f"{folder}/PostLinks.xml", "stackexchange", "duplicate_questions")
    questions: list[_Post] = []
    clean: list[tuple[_Post, Topic, dict[str, str], int]] = []
    copies: list[tuple[str, _Post, Topic]] = []
    start, span = _epoch(2010, 8), _epoch(2023, 1) - _epoch(2010, 8)
    lang_cycle = iter(LANGUAGES * n)
    for kind in _plan(rng, n):
        topic, t = rng.choice(topics), _epoch(2010, 8) + rng.uniform(0, span * 0.9)
        if kind == "non_english":
            lang = next(lang_cycle)
            question = _se_post(w, topic, t, w.paragraphs(w.foreign_statements(lang, rng.randint(2, 3))), rng.randint(0, 9),
                                type_id=1, title=w.foreign(lang, "question"), tags=topic.tags[:1])
            for _ in range(rng.randint(1, 2)):
                answer = _se_post(w, topic, t + rng.uniform(600, 86400), w.paragraphs(w.foreign_statements(lang, 3)),
                                  rng.randint(0, 9), parent=question)
                question.answers.append(answer)
            question.accepted = question.answers[0]
            title_body.plant("non_english", question, lang)
            question_answer.plant("non_english", question, lang)
        elif kind == "mismatched":
            other = rng.choice([x for x in topics if x is not topic])
            question, slots, _ = _se_question(w, topic, t)
            mismatch = {"query_topic": topic.name, "document_topic": other.name}
            if rng.random() < 0.5:
                question.accepted = _se_answer(w, other, question, w.slots(other), rng.randint(0, 15))
                question_answer.plant("mismatched", question, mismatch)
            else:
                stray, _, _ = _se_question(w, other, t)
                question.paragraphs, question.body = stray.paragraphs, stray.body
                title_body.plant("mismatched", question, mismatch)
        else:
            question, slots, group = _se_question(w, topic, t, long=kind == "near_source")
            _se_answers(w, topic, question, slots, accepted=kind != "clean" or rng.random() < 0.7)
            if kind != "clean":
                question.accepted = _se_answer(w, topic, question, slots, rng.randint(1, 30), long=True) \
                    if kind == "near_source" else question.accepted
                copies.append((kind, question, topic))
            else:
                clean.append((question, topic, slots, group))
        questions.append(question)
    for kind, original, topic in copies:
        t = original.t + rng.uniform(86400, 200 * 86400)
        paragraphs, answer_paragraphs = original.paragraphs, original.accepted.paragraphs
        if kind == "near_source":
            paragraphs, answer_paragraphs = _near_duplicate(rng, paragraphs), _near_duplicate(rng, answer_paragraphs)
        copy = _se_post(w, topic, t, paragraphs, rng.randint(0, 5), type_id=1, title=original.title, tags=original.tags)
        answer = _se_post(w, topic, t + rng.uniform(600, 86400), answer_paragraphs, rng.randint(0, 5), parent=copy)
        if kind == "exact_source":
            copy.body, answer.body = original.body, original.accepted.body
            title_body.plant("exact_duplicates", copy, original)
            question_answer.plant("exact_duplicates", copy, original)
        else:
            title_body.near(copy, original, copy.body, original.body)
            question_answer.near(copy, original, answer.body, original.accepted.body)
        copy.answers, copy.accepted = [answer], answer
        questions.append(copy)
    # Questions closed as duplicates: a paraphrase of an earlier question, linked with LinkTypeId 3.
    links: list[tuple[_Post, _Post, int]] = []
    for original, topic, slots, group in rng.sample(clean, len(clean) // 8):
        paraphrase, _, _ = _se_question(w, topic, original.t + rng.uniform(86400, 400 * 86400), slots=slots, group=group)
        questions.append(paraphrase)
        links.append((paraphrase, original, 3))
    for _ in range(max(1, round(len(links) * PLANT_RATES["mismatched"]))):
        a, topic_a, _, _ = rng.choice(clean)
        b, topic_b, _, _ = rng.choice([item for item in clean if item[1] is not topic_a])
        links.append((a, b, 3))
        duplicates.plant("mismatched", (a, b), {"query_topic": topic_a.name, "document_topic": topic_b.name})
    for _ in range(len(links)):
        links.append((rng.choice(clean)[0], rng.choice(clean)[0], 1))
    wikis = [post for topic in topics[:6] for post in _tag_wiki(w, topic, start + rng.uniform(0, span * 0.1))]
    posts = _number_posts(rng, questions, wikis, first_id=1)
    dangling = [(q, _Post(t=q.t, type_id=1, paragraphs=[], body="", score=0, id=posts[-1].id + 1 + i), 3)
                for i, q in enumerate(rng.sample(questions, 2))]
    links += dangling
    answered = [q for q in questions if q.accepted or any(a.score >= MIN_ANSWER_SCORE for a in q.answers)]
    title_body.pairs, question_answer.pairs = len(questions), len(answered)
    duplicates.pairs = sum(1 for _, _, kind in links if kind == 3) - len(dangling)
    skipped = {"skipped_post_types": {"4": len(wikis) // 2, "5": len(wikis) // 2}}
    title_body.notes, question_answer.notes = skipped, {"min_answer_score": MIN_ANSWER_SCORE, **skipped}
    duplicates.notes = {"linked_rows": len(links) - duplicates.pairs - len(dangling),
                        "dangling": sorted(f"{site}/{a.id}-{b.id}" for a, b, _ in dangling)}
    timed_links = sorted(((max(a.t, b.t) + rng.uniform(60, 30 * 86400), a, b, kind) for a, b, kind in links),
                         key=lambda link: link[0])
    link_rows, link_id = [], 0
    for t, a, b, kind in timed_links:
        link_id += rng.randint(1, 40)
        link_rows.append(_xml_row({"Id": link_id, "CreationDate": _stamp(t), "PostId": a.id, "RelatedPostId": b.id,
                                   "LinkTypeId": kind}))
    posts_xml = _XML_HEAD.format(root="posts") + "".join(_post_row(rng, p) for p in posts) + "</posts>"
    links_xml = _XML_HEAD.format(root="postlinks") + "".join(link_rows) + "</postlinks>"

    def key(item: Any) -> str:
        return f"{site}/{item[0].id}-{item[1].id}" if isinstance(item, tuple) else f"{site}/{item.id}"
    return posts_xml, links_xml, {f"{view.file}#{view.mode}": view.as_json(key)
                                  for view in (title_body, question_answer, duplicates)}


def write_posts_xml(path: str | Path, target_bytes: int, seed: int = 0, site: str = "cooking") -> dict[str, int]:
    """Stream a Posts.xml of at least ``target_bytes`` without holding it in memory.

    Questions and answers come from a pool of generated threads, redrawn with new ids and dates chunk by chunk.
    """
    rng = random.Random(f"{seed}:big-posts:{site}")
    w = _Writer(rng, distinct=False)
    topics = TOPICS[SITES[site]]
    pool = [_clean_thread(w, rng.choice(topics), 0.0)[0] for _ in range(1000)]
    head, tail = _XML_HEAD.format(root="posts").encode(), b"</posts>"
    written, rows, next_id, t = len(head), 0, 1, _epoch(2010, 8)
    with open(path, "wb") as out:
        out.write(head)
        while written + len(tail) < target_bytes:
            questions = rng.sample(pool, 200)
            for question in questions:
                t += rng.uniform(60, 3600)
                for post in [*question.answers, question]:
                    post.t += t - question.t
            posts = _number_posts(rng, questions, [], next_id)
            next_id = posts[-1].id + 1
            chunk = "".join(_post_row(rng, p) for p in posts).encode()
            out.write(chunk)
            written, rows = written + len(chunk), rows + len(posts)
        out.write(tail)
    return {"bytes": written + len(tail), "rows": rows}


# ---------------------------------------------------------------- Quora

def _quora(rng: random.Random, n: int) -> tuple[list[list[Any]], dict]:
    w = _Writer(rng)
    topics = [topic for domain in TOPICS.values() for topic in domain]
    view = _View("quora/quora_duplicate_questions.tsv", "quora", "duplicates",
                 notes={"near_duplicates_note": "questions are too short for word 5-gram near duplicates"})
    seen: set[tuple[str, str]] = set()

    def question_pair(topic: Topic, other: Topic | None, lang: str | None = None) -> tuple[str, str]:
        """Two questions: paraphrases from one title group, or ``other``'s question, or a question in ``lang``."""
        for _ in range(100):
            slots = w.slots(topic)
            first, second = rng.sample(rng.choice(TITLE_GROUPS), 2)
            if lang:
                question = w.foreign(lang, "question")
                pair = (question, question + " " + w.foreign(lang, "statement"))
            else:
                pair = (w.sentence(first, slots),
                        w.sentence(second, slots) if other is None else w.title(other, w.slots(other))[0])
            if pair not in seen and pair[0] != pair[1]:
                seen.add(pair)
                return pair
        raise RuntimeError("the question templates ran out of distinct pairs")

    items: list[dict[str, Any]] = []
    copies = []
    langs = iter(LANGUAGES * n)
    positives = n // 2
    for kind in _plan(rng, positives, near=False) + ["negative"] * (n - positives):
        topic, t = rng.choice(topics), rng.random()
        other = rng.choice([x for x in topics if x is not topic])
        item = {"t": t, "is_duplicate": 1}
        if kind == "non_english":
            lang = next(langs)
            item["pair"] = question_pair(topic, None, lang)
            view.plant("non_english", item, lang)
        elif kind == "mismatched":
            item["pair"] = question_pair(topic, other)
            view.plant("mismatched", item, {"query_topic": topic.name, "document_topic": other.name})
        elif kind == "negative":
            unrelated = other if rng.random() < 0.3 else rng.choice([x for x in topics if x.subreddit == topic.subreddit])
            item["pair"], item["is_duplicate"] = question_pair(topic, unrelated), 0
        else:
            item["pair"] = question_pair(topic, None)
            if kind == "exact_source":
                copies.append(item)
        items.append(item)
    for original in copies:
        copy = {"t": original["t"] + rng.uniform(0, 1 - original["t"]), "pair": original["pair"], "is_duplicate": 1}
        view.plant("exact_duplicates", copy, original)
        items.append(copy)
    items.sort(key=lambda item: item["t"])
    qids: dict[str, int] = {}
    rows = [["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]]
    for number, item in enumerate(items):
        item["id"] = number
        q1, q2 = item["pair"]
        rows.append([number, qids.setdefault(q1, len(qids) + 1), qids.setdefault(q2, len(qids) + 1), q1, q2,
                     item["is_duplicate"]])
    view.pairs = sum(item["is_duplicate"] for item in items)
    return rows, {view.file: view.as_json(lambda item: str(item["id"]))}


# ---------------------------------------------------------------- Amazon reviews

@dataclass(eq=False)
class _Review:
    asin: str
    reviewer: str
    stamp: int
    rating: int
    title: str
    paragraphs: list[str]
    name: str
    joiner: str  # the 2023 files separate some paragraphs with <br /> tags

    @property
    def key(self) -> str:
        return f"{self.asin}/{self.reviewer}/{self.stamp}"

    @property
    def text(self) -> str:
        return self.joiner.join(self.paragraphs)


def _token(rng: random.Random, size: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _reviews(rng: random.Random, n: int, file: str, new_format: bool) -> tuple[list[_Review], _View]:
    """Reviews of product topics: the title and text of a review are about the same product."""
    w = _Writer(rng)
    products = {topic.name: ["B0" + _token(rng, 8) for _ in range(3)] for topic in TOPICS["products"]}
    reviewers = [("AE" + _token(rng, 26)) if new_format else ("A" + _token(rng, rng.choice((12, 13))))
                 for _ in range(n // 2)]
    years = (2019, 2024) if new_format else (2010, 2019)
    view = _View(file, "amazon_reviews", "title_text")
    keys: set[str] = set()

    def review(asin: str, title: str, paragraphs: list[str], rating: int, reviewer: str | None = None,
               joiner: str | None = None) -> _Review:
        while True:
            seconds = int(rng.uniform(_epoch(years[0]), _epoch(years[1])))
            stamp = seconds * 1000 + rng.randint(0, 999) if new_format else seconds - seconds % 86400
            made = _Review(asin, reviewer or rng.choice(reviewers), stamp, rating, title, paragraphs,
                           f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)[0]}.",
                           joiner or ("<br /><br />" if new_format and rng.random() < 0.3 else " "))
            if made.key not in keys:
                keys.add(made.key)
                return made

    def english(topic: Topic, rating: int, count: int, specific_title: bool = False) -> tuple[str, list[str]]:
        good = rating >= 4 or (rating == 3 and rng.random() < 0.5)
        titles = REVIEW_TITLE_GOOD if good else REVIEW_TITLE_BAD
        slots = w.slots(topic)
        title = w.sentence(rng.choice([t for t in titles if "{" in t] if specific_title else titles), slots)
        body = w.sentences(_lines(REVIEW_GOOD if good else REVIEW_BAD), topic, count, slots)
        return title, w.paragraphs(body)

    reviews, copies = [], []
    langs = iter(LANGUAGES * n)
    for kind in _plan(rng, n):
        topic = rng.choice(TOPICS["products"])
        asin, rating = rng.choice(products[topic.name]), rng.choices((1, 2, 3, 4, 5), (6, 5, 9, 20, 60))[0]
        if kind == "non_english":
            lang = next(langs)
            made = review(asin, w.foreign(lang, "short"), w.paragraphs(w.foreign_statements(lang, rng.randint(2, 4))), rating)
            view.plant("non_english", made, lang)
        elif kind == "mismatched":
            other = rng.choice([x for x in TOPICS["products"] if x is not topic])
            title, _ = english(topic, rating, 1, specific_title=True)
            made = review(asin, title, english(other, rating, rng.randint(2, 5))[1], rating)
            view.plant("mismatched", made, {"query_topic": topic.name, "document_topic": other.name})
        else:
            made = review(asin, *english(topic, rating, rng.randint(9, 11) if kind == "near_source" else
                                         rng.randint(2, 5)), rating)
            if kind != "clean":
                copies.append((kind, made, topic))
        reviews.append(made)
    for kind, original, topic in copies:
        if kind == "exact_source":
            asin = rng.choice([a for a in products[topic.name] if a != original.asin])
            copy = review(asin, original.title, original.paragraphs, original.rating, original.reviewer, original.joiner)
            view.plant("exact_duplicates", copy, original)
        else:
            copy = review(original.asin, original.title, _near_duplicate(rng, original.paragraphs), original.rating)
            view.near(copy, original, copy.text, original.text)
        reviews.append(copy)
    view.pairs = len(reviews)
    return reviews, view


def _amazon_2018(rng: random.Random, n: int) -> tuple[list[dict], dict]:
    """McAuley 2018 rows (as in the 5-core files, sorted by product), a few repeated under another style."""
    reviews, view = _reviews(rng, n, "amazon/reviews_2018.json.gz", new_format=False)
    styles = [{"Color:": " Black"}, {"Color:": " Navy Blue"}, {"Size:": " Medium"}, {"Size:": " 10 M US", "Color:": " Grey"}]
    repeats = rng.sample([r for r in reviews if not any(r is item for _, item, _ in view.entries)], max(1, n // 50))
    view.notes = {"repeated_keys": {r.key: 2 for r in repeats},
                  "repeated_keys_note": "the same review under another product style: one id, two rows"}
    rows = []
    for r in sorted(reviews + repeats, key=lambda r: (r.asin, r.stamp)):
        day = _utc(r.stamp)
        row: dict[str, Any] = {"overall": float(r.rating)}
        if rng.random() < 0.15:
            row["vote"] = str(rng.randint(2, 60))
        row |= {"verified": rng.random() < 0.85, "reviewTime": f"{day:%m} {day.day}, {day.year}",
                "reviewerID": r.reviewer, "asin": r.asin}
        if rng.random() < 0.7:
            row["style"] = rng.choice(styles)
        row |= {"reviewerName": r.name, "reviewText": r.text, "summary": r.title,
                "unixReviewTime": r.stamp}
        rows.append(row)
    view.pairs = len(rows)
    return rows, {view.file: view.as_json(lambda r: r.key)}


def _amazon_2023(rng: random.Random, n: int) -> tuple[list[dict], dict]:
    reviews, view = _reviews(rng, n, "amazon/reviews_2023.jsonl", new_format=True)
    rows = []
    for r in sorted(reviews, key=lambda r: r.stamp):
        rows.append({"rating": float(r.rating), "title": r.title, "text": r.text, "images": [],
                     "asin": r.asin, "parent_asin": r.asin, "user_id": r.reviewer, "timestamp": r.stamp,
                     "helpful_vote": rng.choice((0, 0, 0, 1, 2, 5, 14)), "verified_purchase": rng.random() < 0.9})
    return rows, {view.file: view.as_json(lambda r: r.key)}


# ---------------------------------------------------------------- CNN/DailyMail

def _news(rng: random.Random, n: int) -> tuple[list[dict], dict]:
    """Articles whose highlights restate the article's own names, places and numbers."""
    w = _Writer(rng)
    view = _View("news/cnn_dailymail.jsonl", "news", "cnn_dailymail")
    fillers = _lines(NEWS_FILLERS)

    def slots() -> dict[str, str]:
        city, country = rng.choice(CITIES)
        name, name2 = (f"{rng.choice(FIRST_NAMES)} {last}" for last in rng.sample(LAST_NAMES, 2))
        return {"city": city, "country": country, "name": name, "name2": name2, "day": rng.choice(DAYS),
                "count": str(rng.randint(12, 900)), "count2": str(rng.randint(40, 5000)), "year": str(rng.randint(1990, 2014)),
                "pct": str(rng.randint(3, 45)), "mag": f"{rng.uniform(5, 7.9):.1f}", "money": f"${rng.randint(2, 90)} million"}

    def story(event: str, filler_count: int) -> tuple[list[str], str]:
        facts, (sentences, highlights) = slots(), EVENTS[event]
        body = [w.sentence(s, facts) for s in sentences]
        for filler in rng.sample(fillers, filler_count):
            body.insert(rng.randint(1, len(body)), w.sentence(filler, facts))
        body[0] = f"{facts['city'].upper()}, {facts['country']} (CNN) -- {body[0]}"
        return body, "\n".join(w.sentence(h, facts) + " ." for h in highlights)

    items, copies = [], []
    langs = iter(LANGUAGES * n)
    for kind in _plan(rng, n):
        event = rng.choice(list(EVENTS))
        if kind == "non_english":
            lang = next(langs)
            item = {"article": w.foreign_statements(lang, rng.randint(5, 7)),
                    "highlights": "\n".join(s.rstrip(".") + " ." for s in w.foreign_statements(lang, 2))}
            view.plant("non_english", item, lang)
        else:
            article, highlights = story(event, rng.randint(7, 9) if kind == "near_source" else rng.randint(2, 6))
            item = {"article": article, "highlights": highlights}
            if kind == "mismatched":
                other = rng.choice([e for e in EVENTS if e != event])
                item["highlights"] = story(other, 0)[1]
                view.plant("mismatched", item, {"query_topic": other, "document_topic": event})
            elif kind != "clean":
                copies.append((kind, item))
        items.append(item)
    for kind, original in copies:
        copy = {"highlights": original["highlights"]}
        if kind == "exact_source":
            copy["article"] = original["article"]
            view.plant("exact_duplicates", copy, original)
        else:
            copy["article"] = _near_duplicate(rng, original["article"])
            view.near(copy, original, " ".join(copy["article"]), " ".join(original["article"]))
        position = next(i for i, item in enumerate(items) if item is original)
        items.insert(rng.randint(position + 1, len(items)), copy)
    rows = []
    for item in items:
        item["id"] = f"{rng.getrandbits(160):040x}"
        rows.append({"article": " ".join(item["article"]), "highlights": item["highlights"], "id": item["id"]})
    view.pairs = len(rows)
    return rows, {view.file: view.as_json(lambda item: item["id"])}


# ---------------------------------------------------------------- Reddit (Pushshift)

def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, digit = divmod(number, 36)
        out = digits[digit] + out
    return out or "0"


def _reddit(rng: random.Random, n: int) -> tuple[list[dict], list[dict], dict]:
    """Submissions (self posts, link posts, deleted and removed ones) and comment threads under them."""
    w = _Writer(rng)
    topics = [topic for domain in TOPICS.values() for topic in domain]
    title_body = _View("reddit/submissions.jsonl", "reddit", "title_body")
    post_comment = _View("reddit/comments.jsonl", "reddit", "post_comment",
                         notes={"submissions_file": "reddit/submissions.jsonl"})
    start, span = _epoch(2019), _epoch(2022) - _epoch(2019)
    submissions: list[dict[str, Any]] = []
    comments: list[dict[str, Any]] = []

    def author() -> str:
        adjective, animal = rng.choice(("quiet", "rusty", "salty", "tiny")), rng.choice(("otter", "heron", "badger"))
        return f"{adjective}_{animal}{rng.randint(1, 999)}"

    def submission(topic: Topic, t: float, title: str, selftext: str) -> dict[str, Any]:
        post = {"author": author(), "created_utc": int(t), "is_self": True, "over_18": False,
                "score": rng.choice((0, 1, 1, 2, 5, 12, 40, 310)), "selftext": selftext, "subreddit": topic.subreddit,
                "title": title, "_comments": 0}
        submissions.append(post)
        return post

    def comment(post: dict, t: float, body: str, score: int, parent: dict | None = None, by: str | None = None) -> dict:
        made = {"author": by or author(), "body": body, "created_utc": int(t), "score": score,
                "subreddit": post["subreddit"], "_post": post, "_parent": parent or post}
        post["_comments"] += 1
        comments.append(made)
        return made

    def thread(post: dict, topic: Topic, lang: str | None, mismatched_top: Topic | None) -> dict:
        """1-4 top-level comments with distinct scores, some replies and a deleted one; returns the top comment."""
        def text(about: Topic) -> str:
            if lang:
                return " ".join(w.foreign_statements(lang, rng.randint(2, 3)))
            return " ".join(w.sentences(_lines(ANSWER), about, rng.randint(2, 3), w.slots(about)))
        scores = rng.sample(range(-3, 300), rng.randint(1, 4))
        t = post["created_utc"]
        top_level = [comment(post, t + rng.uniform(60, 86400), text(topic), s) for s in scores]
        top = max(top_level, key=lambda c: c["score"])
        if mismatched_top:
            top["body"] = text(mismatched_top)
        for _ in range(rng.randint(0, 3)):
            parent = rng.choice(top_level)
            comment(post, parent["created_utc"] + rng.uniform(60, 86400), text(topic), rng.randint(-2, 30), parent)
        if rng.random() < 0.3:
            comment(post, t + rng.uniform(60, 86400), rng.choice(("[deleted]", "[removed]")), min(scores) - 1,
                    by="[deleted]")
        return top

    def self_post(topic: Topic, t: float, count: int) -> tuple[dict, dict[str, str]]:
        slots = w.slots(topic)
        title = w.sentence(rng.choice(REDDIT_TITLES), slots) if rng.random() < 0.3 else w.title(topic, slots)[0]
        return submission(topic, t, title, "\n\n".join(w.paragraphs(w.sentences(_lines(BODY), topic, count, slots)))), slots

    copies = []
    langs = iter(LANGUAGES * n)
    for kind in _plan(rng, n) + ["link", "[deleted]", "[removed]", "empty"] * max(1, n // 25):
        topic, t = rng.choice(topics), start + rng.uniform(0, span * 0.9)
        if kind == "non_english":
            lang = next(langs)
            post = submission(topic, t, w.foreign(lang, "question"),
                              "\n\n".join(w.paragraphs(w.foreign_statements(lang, rng.randint(2, 4)))))
            title_body.plant("non_english", post, lang)
            post_comment.plant("non_english", (post, thread(post, topic, lang, None)), lang)
        elif kind == "mismatched":
            other = rng.choice([x for x in topics if x is not topic])
            post, _ = self_post(topic, t, 1)
            post["selftext"] = "\n\n".join(w.paragraphs(w.sentences(_lines(BODY), other, rng.randint(2, 5), w.slots(other))))
            title_body.plant("mismatched", post, {"query_topic": topic.name, "document_topic": other.name})
        elif kind in ("link", "[deleted]", "[removed]", "empty"):
            post, _ = self_post(topic, t, 1)
            post["selftext"] = kind if kind.startswith("[") else ""
            if kind == "link":
                post["is_self"], post["url"] = False, f"https://example.com/{topic.subreddit.lower()}/{rng.randint(1000, 99999)}"
            if kind == "[deleted]":
                post["author"] = "[deleted]"
        else:
            post, _ = self_post(topic, t, rng.randint(9, 10) if kind == "near_source" else rng.randint(2, 6))
            if kind == "clean":
                other = rng.choice([x for x in topics if x is not topic]) if rng.random() < PLANT_RATES["mismatched"] else None
                top = thread(post, topic, None, other)
                if other:
                    post_comment.plant("mismatched", (post, top), {"query_topic": topic.name, "document_topic": other.name})
            else:
                copies.append((kind, post, topic))
    for kind, original, topic in copies:
        t = original["created_utc"] + rng.uniform(3600, 90 * 86400)
        if kind == "exact_source":
            copy = submission(topic, t, original["title"], original["selftext"])
            title_body.plant("exact_duplicates", copy, original)
        else:
            edited = _near_duplicate(rng, original["selftext"].split("\n\n"))
            copy = submission(topic, t, original["title"], "\n\n".join(edited))
            title_body.near(copy, original, copy["selftext"], original["selftext"])
    next_id = 36 ** 5 * 17
    for post in sorted(submissions, key=lambda p: p["created_utc"]):
        next_id += rng.randint(1, 30)
        post["id"] = _base36(next_id)
    next_id = 36 ** 6 * 3
    for made in sorted(comments, key=lambda c: c["created_utc"]):
        next_id += rng.randint(1, 30)
        made["id"] = _base36(next_id)
    submission_rows = [_submission_row(post) for post in sorted(submissions, key=lambda p: (p["created_utc"], p["id"]))]
    comment_rows = [_comment_row(made) for made in sorted(comments, key=lambda c: (c["created_utc"], c["id"]))]
    title_body.pairs = sum(1 for post in submissions if post["selftext"] not in ("", "[deleted]", "[removed]"))
    post_comment.pairs = sum(1 for post in submissions if post["_comments"])
    title_body.notes = {"skipped": {reason: sum(1 for p in submissions if p["selftext"] == text)
                                    for reason, text in (("deleted", "[deleted]"), ("removed", "[removed]"), ("empty", ""))}}

    def key(item: Any) -> str:
        return f"{item[0]['id']}/{item[1]['id']}" if isinstance(item, tuple) else item["id"]
    return submission_rows, comment_rows, {f"{v.file}#{v.mode}": v.as_json(key) for v in (title_body, post_comment)}


def _subreddit_id(name: str) -> str:
    return "t5_" + _base36(int(hashlib.sha1(name.encode()).hexdigest()[:8], 16))


def _submission_row(post: dict[str, Any]) -> dict[str, Any]:
    slug = "_".join(document_words(post["title"])[:6])
    permalink = f"/r/{post['subreddit']}/comments/{post['id']}/{slug}/"
    return {"author": post["author"], "created_utc": post["created_utc"], "id": post["id"], "is_self": post["is_self"],
            "num_comments": post["_comments"], "over_18": post["over_18"], "permalink": permalink,
            "score": post["score"], "selftext": post["selftext"], "subreddit": post["subreddit"],
            "subreddit_id": _subreddit_id(post["subreddit"]), "title": post["title"],
            "url": post.get("url", "https://www.reddit.com" + permalink)}


def _comment_row(made: dict[str, Any]) -> dict[str, Any]:
    parent = made["_parent"]
    return {"author": made["author"], "body": made["body"], "created_utc": made["created_utc"], "id": made["id"],
            "link_id": "t3_" + made["_post"]["id"],
            "parent_id": ("t3_" if parent is made["_post"] else "t1_") + parent["id"],
            "score": made["score"], "subreddit": made["subreddit"], "subreddit_id": _subreddit_id(made["subreddit"])}


# ---------------------------------------------------------------- the corpus

def _write(path: Path, data: bytes, compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw:
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
                packed.write(data)
        else:
            raw.write(data)


def _jsonl(rows: list[dict], ensure_ascii: bool = False) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=ensure_ascii) + "\n" for row in rows).encode()


def generate_demo_corpus(folder: str | Path, seed: int = 0, scale: float = 1.0) -> dict[str, Any]:
    """Write the sample corpus and its ground_truth.json under ``folder``; return the ground truth."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)

    def count(source: str) -> int:
        return max(40, round(BASE_COUNTS[source] * scale))

    def rng(source: str) -> random.Random:
        return random.Random(f"{seed}:{source}")

    sources: dict[str, Any] = {}
    files: dict[str, dict[str, int]] = {}

    def add(file: str, data: bytes, rows: int, compress: bool = False) -> None:
        _write(root / file, data, compress)
        files[file] = {"rows": rows}

    for site, domain in SITES.items():
        posts_xml, links_xml, views = _stackexchange_site(rng(f"stackexchange/{site}"), site, TOPICS[domain],
                                                          count("stackexchange"))
        add(f"stackexchange/{site}/Posts.xml", posts_xml.encode(), posts_xml.count("<row "))
        add(f"stackexchange/{site}/PostLinks.xml", links_xml.encode(), links_xml.count("<row "))
        sources |= views
    quora_rows, view = _quora(rng("quora"), count("quora"))
    sources |= view
    tsv = _TsvBuffer()
    csv.writer(tsv, dialect="excel-tab", lineterminator="\n").writerows(quora_rows)
    add("quora/quora_duplicate_questions.tsv", tsv.data(), len(quora_rows) - 1)
    rows, view = _amazon_2018(rng("amazon_2018"), count("amazon_2018"))
    sources |= view
    add("amazon/reviews_2018.json.gz", _jsonl(rows, ensure_ascii=True), len(rows), compress=True)
    rows, view = _amazon_2023(rng("amazon_2023"), count("amazon_2023"))
    sources |= view
    add("amazon/reviews_2023.jsonl", _jsonl(rows), len(rows))
    rows, view = _news(rng("news"), count("news"))
    sources |= view
    add("news/cnn_dailymail.jsonl", _jsonl(rows), len(rows))
    submission_rows, comment_rows, views = _reddit(rng("reddit"), count("reddit"))
    sources |= views
    add("reddit/submissions.jsonl", _jsonl(submission_rows), len(submission_rows))
    add("reddit/comments.jsonl", _jsonl(comment_rows), len(comment_rows))
    truth = {"seed": seed, "scale": scale, "near_duplicate_jaccard": list(NEAR_JACCARD),
             "jaccard": f"word {SHINGLE_WORDS}-gram shingle sets of the document text, lowercased \\w+ words "
                        "after removing HTML tags and unescaping entities",
             "sources": sources, "files": files}
    (root / "ground_truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return truth


class _TsvBuffer:
    """A text sink for csv.writer that collects UTF-8 bytes."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def data(self) -> bytes:
        return "".join(self.parts).encode()
