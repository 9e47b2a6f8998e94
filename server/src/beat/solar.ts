/**
 * Celery's solar schedule: a sun event at a latitude and longitude, computed with suncalc.
 * Celery (through ephem) and suncalc place the horizon alike: the upper limb with refraction
 * (-0.833°) for sunrise and sunset, the centre at -6°, -12° and -18° for civil, nautical and
 * astronomical twilight; they agree to about a minute.
 */
import { getTimes, type SunTimes } from "suncalc";
import { DAY, utcMidnight } from "./zone.js";

export const SOLAR_EVENTS = [
  "dawn_astronomical",
  "dawn_nautical",
  "dawn_civil",
  "sunrise",
  "solar_noon",
  "sunset",
  "dusk_civil",
  "dusk_nautical",
  "dusk_astronomical",
] as const;

export type SolarEvent = (typeof SOLAR_EVENTS)[number];

const SUNCALC: Record<SolarEvent, keyof SunTimes> = {
  dawn_astronomical: "nightEnd",
  dawn_nautical: "nauticalDawn",
  dawn_civil: "dawn",
  sunrise: "sunrise",
  solar_noon: "solarNoon",
  sunset: "sunset",
  dusk_civil: "dusk",
  dusk_nautical: "nauticalDusk",
  dusk_astronomical: "night",
};

/** Near the poles an event may not happen for months; beyond a year it never does. */
const HORIZON_DAYS = 370;

export class Solar {
  constructor(
    readonly event: SolarEvent,
    readonly latitude: number,
    readonly longitude: number,
  ) {}

  /** The first occurrence strictly after `after`; null if the sun never gets there. */
  next(after: number): number | null {
    const first = utcMidnight(after) - DAY;
    for (let i = 0; i < HORIZON_DAYS; i++) {
      const value = getTimes(new Date(first + i * DAY + DAY / 2), this.latitude, this.longitude)[
        SUNCALC[this.event]
      ];
      const t = value instanceof Date ? value.getTime() : Number.NaN;
      if (Number.isFinite(t) && t > after) return t;
    }
    return null;
  }

  describe(): string {
    return `${this.event} (${this.latitude}, ${this.longitude})`;
  }
}
